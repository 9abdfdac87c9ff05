// The reader-study form (templates/readerstudy/study_form.html): only the chosen task's runs are listed
// (each run's checkbox carries data-task; a run of another task is unticked when hidden, so it is never
// sent), and the Likert scales box is shown for the Likert design only.
const form = document.getElementById("study-form");
const task = form?.querySelector("select[name=task]");
const design = form?.querySelector("select[name=design]");
const runs = form ? [...form.querySelectorAll("input[name=runs][data-task]")] : [];
const note = document.getElementById("runs-note");
const scalesRow = form?.querySelector(".field-scales");
const runsBox = form?.querySelector("#id_runs");
if (note && runsBox) runsBox.after(note);

function filterRuns() {
  const chosen = task.value;
  let shown = 0;
  runs.forEach((input) => {
    const option = input.closest("label")?.parentElement ?? input;
    const visible = chosen !== "" && input.dataset.task === chosen;
    option.hidden = !visible;
    if (!visible) input.checked = false;
    if (visible) shown += 1;
  });
  if (note) {
    note.textContent = chosen === "" ? "Choose a task to list its runs." : shown ? "" : "This task has no succeeded runs you can see.";
    note.hidden = note.textContent === "";
  }
}

function toggleScales() {
  if (scalesRow) scalesRow.hidden = design.value !== "likert";
}

if (task) {
  task.addEventListener("change", filterRuns);
  filterRuns();
}
if (design) {
  design.addEventListener("change", toggleScales);
  toggleScales();
}
