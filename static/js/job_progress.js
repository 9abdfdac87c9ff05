// Live progress of background jobs (runs, evaluations, downstream jobs): every element with
// data-job-progress="<the job's API URL>" polls that URL and fills its descendants
//
//   data-job-field="status"    the status text, and the class "status status-<status>"
//   data-job-field="phase"     the job's phase ("" when none)
//   data-job-field="progress"  "<progress_done> / <progress_total>" (+ " " + data-job-unit); data-job-waiting
//                              is shown instead while progress_total is 0 (a job that has not started)
//   data-job-field="percent"   "<progress_percent>%"
//   data-job-field="error"     the job's error (hidden when there is none)
//   data-job-field="loss"      the training loss to 3 significant figures ("—" when none)
//   data-job-bar               width: <progress_percent>%
//
// and reloads the page once the API says `is_final: true`, so the server renders the outcome.
// Which states are final is the server's call, never a list here. An element rendered with
// data-final="1" (the job was already over) is not polled: reloading would change nothing.
import { errorMessage, poll, showError } from "./dom.js";

const FIELDS = {
  status(node, job) {
    node.textContent = job.status;
    [...node.classList].filter((name) => name.startsWith("status-")).forEach((name) => node.classList.remove(name));
    node.classList.add("status", `status-${job.status}`);
  },
  phase(node, job) {
    node.textContent = job.phase || "";
  },
  progress(node, job) {
    // data-job-unit: words after the count; data-job-waiting: the text while nothing is counted yet.
    const { jobUnit: unit, jobWaiting: waiting } = node.dataset;
    if (!job.progress_total && waiting) node.textContent = waiting;
    else node.textContent = `${job.progress_done} / ${job.progress_total}${unit ? ` ${unit}` : ""}`;
  },
  percent(node, job) {
    node.textContent = `${job.progress_percent}%`;
  },
  error(node, job) {
    node.textContent = job.error || "";
    node.hidden = !job.error;
  },
  loss(node, job) {
    node.textContent = job.loss === null || job.loss === undefined ? "—" : Number(job.loss).toPrecision(3);
  },
};

function show(box, job) {
  box.querySelectorAll("[data-job-field]").forEach((node) => {
    const fill = FIELDS[node.dataset.jobField];
    if (fill) fill(node, job);
    else console.warn(`unknown data-job-field="${node.dataset.jobField}"`);
  });
  box.querySelectorAll("[data-job-bar]").forEach((bar) => {
    bar.style.width = `${job.progress_percent}%`;
  });
}

function follow(box) {
  const url = box.dataset.jobProgress;
  let handle = null;
  const stopWith = (reason) => {
    handle?.stop();
    box.dataset.jobPolling = "stopped";
    showError(box, `Live progress stopped: ${reason.replace(/\.$/, "")}. Reload the page to see the latest state.`);
  };
  handle = poll(url, {
    firstDelayMs: 1000,
    intervalMs: 1500,
    onData(job) {
      if (typeof job?.is_final !== "boolean") {
        stopWith(`${url} did not say whether the job is final`);
        return;
      }
      show(box, job);
      if (job.is_final) window.location.reload();
    },
    isDone: (job) => job?.is_final !== false,
    onError: (error) => stopWith(errorMessage(error)),
  });
  box.dataset.jobPolling = "1";
}

document.querySelectorAll("[data-job-progress]").forEach((box) => {
  if (box.dataset.final !== "1") follow(box);
});
