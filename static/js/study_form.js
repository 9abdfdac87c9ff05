// The reader-study form (templates/readerstudy/study_form.html): only the chosen task's runs are listed
// (each run's checkbox carries data-task; a run of another task is unticked when hidden, so it is never
// sent), the Likert scales box is shown for the Likert design only, and the probe-mode fields for
// hallucination marking only (the acceptance radius while radius acceptance is chosen).
const form = document.getElementById("study-form");
const task = form?.querySelector("select[name=task]");
const design = form?.querySelector("select[name=design]");
const runs = form ? [...form.querySelectorAll("input[name=runs][data-task]")] : [];
const note = document.getElementById("runs-note");
const scalesRow = form?.querySelector(".field-scales");
const probeRows = form ? [...form.querySelectorAll(".field-probe_mode, .field-acceptance, .field-acceptance_radius_px")] : [];
const probeMode = form?.querySelector("input[name=probe_mode]");
const acceptance = form?.querySelector("select[name=acceptance]");
const notForProbes = form ? [...form.querySelectorAll(".field-items_per_model, .field-real_pool, .field-real_ratio")] : [];
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
  if (runsBox) runsBox.hidden = shown === 0;
  if (note) {
    note.textContent = chosen === "" ? "Choose a task to list its runs." : shown ? "" : "This task has no succeeded runs you can see.";
    note.hidden = note.textContent === "";
  }
}

function toggleScales() {
  if (scalesRow) scalesRow.hidden = design.value !== "likert";
  const marking = design.value === "hallucination";
  probeRows.forEach((row) => {
    const name = row.classList.contains("field-probe_mode") ? "mode" : row.classList.contains("field-acceptance") ? "acceptance" : "radius";
    const on = probeMode?.checked;
    row.hidden = !marking || (name !== "mode" && !on) || (name === "radius" && acceptance?.value !== "radius");
  });
  // A probe study reads every probe case of every run and no real images: those settings do not apply.
  notForProbes.forEach((row) => {
    row.hidden = marking && Boolean(probeMode?.checked);
  });
}

if (task) {
  task.addEventListener("change", filterRuns);
  filterRuns();
}
if (design) {
  design.addEventListener("change", toggleScales);
  probeMode?.addEventListener("change", toggleScales);
  acceptance?.addEventListener("change", toggleScales);
  toggleScales();
}

// The Likert scales editor: one row per scale (key, label, the five anchors) over the JSON box, which stays
// the form's field (the server checks it) and opens under "Edit as JSON"; each edit writes the JSON again.
const scalesBox = form?.querySelector("textarea[name=scales]");
const ANCHORS = 5;

function readScales() {
  try {
    const value = JSON.parse(scalesBox.value || "[]");
    return Array.isArray(value) ? value : null;
  } catch {
    return null;
  }
}

function input(value, label, onInput) {
  const field = document.createElement("input");
  field.type = "text";
  field.value = value ?? "";
  field.setAttribute("aria-label", label);
  field.placeholder = label;
  field.addEventListener("input", () => onInput(field.value));
  return field;
}

function buildEditor(editor) {
  const scales = readScales();
  editor.replaceChildren();
  if (scales === null) {
    editor.textContent = "The JSON below does not parse: fix it there, or reload the page.";
    editor.className = "scale-editor errorlist";
    return;
  }
  editor.className = "scale-editor";
  const write = () => {
    scalesBox.value = JSON.stringify(scales, null, 1);
  };
  scales.forEach((scale, index) => {
    const row = document.createElement("fieldset");
    row.className = "scale-row";
    const legend = document.createElement("legend");
    legend.textContent = `Scale ${index + 1}`;
    row.append(legend);
    row.append(input(scale.key, "key", (v) => { scale.key = v; write(); }));
    row.append(input(scale.label, "label", (v) => { scale.label = v; write(); }));
    const anchors = document.createElement("div");
    anchors.className = "scale-anchors";
    if (!Array.isArray(scale.anchors)) scale.anchors = [];
    for (let i = 0; i < ANCHORS; i += 1) {
      anchors.append(input(scale.anchors[i], `anchor ${i + 1}`, (v) => { scale.anchors[i] = v; write(); }));
    }
    row.append(anchors);
    const remove = document.createElement("button");
    remove.type = "button";
    remove.className = "link-button";
    remove.textContent = "Remove this scale";
    remove.addEventListener("click", () => {
      scales.splice(index, 1);
      write();
      buildEditor(editor);
    });
    row.append(remove);
    editor.append(row);
  });
  const add = document.createElement("button");
  add.type = "button";
  add.id = "add-scale";
  add.textContent = "Add a scale";
  add.addEventListener("click", () => {
    scales.push({ key: "", label: "", anchors: Array(ANCHORS).fill("") });
    write();
    buildEditor(editor);
    editor.querySelectorAll(".scale-row")[scales.length - 1]?.querySelector("input")?.focus();
  });
  editor.append(add);
}

if (scalesBox) {
  const editor = document.createElement("div");
  const details = document.createElement("details");
  const summary = document.createElement("summary");
  summary.textContent = "Edit as JSON";
  scalesBox.before(editor);
  scalesBox.before(details);
  details.append(summary, scalesBox);
  scalesBox.addEventListener("change", () => buildEditor(editor));
  buildEditor(editor);
}
