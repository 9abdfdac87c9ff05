// The leaderboard table: Rank and Run stay put while the table body scrolls sideways (CSS sticky; the
// Run column's offset is the Rank column's measured width; a tier's label sticks just right of them while
// any of its columns shows), and each tier (pixel, feature, clinical,
// efficiency) collapses to one narrow column from its header. Collapsed tiers are kept per task in
// localStorage, so the choice survives reloads and the ranking form's submissions.
const table = document.getElementById("leaderboard");

function storageKey() {
  return `leaderboard-collapsed:${table.dataset.task}`;
}

function loadCollapsed() {
  try {
    const saved = JSON.parse(localStorage.getItem(storageKey()) || "[]");
    return new Set(Array.isArray(saved) ? saved : []);
  } catch (_) {
    return new Set(); // storage off, or a value not written by this page
  }
}

function saveCollapsed(collapsed) {
  try {
    localStorage.setItem(storageKey(), JSON.stringify([...collapsed]));
  } catch (_) {
    // private mode: the state lasts for this page only
  }
}

function setTier(tier, collapsed) {
  const head = table.querySelector(`th[data-tier-head="${tier}"]`);
  if (!head) return;
  head.colSpan = collapsed ? 1 : Number(head.dataset.span);
  head.classList.toggle("collapsed", collapsed);
  head.querySelector("button.tier-toggle").setAttribute("aria-expanded", String(!collapsed));
  table.querySelectorAll(`[data-tier="${tier}"]`).forEach((cell) => {
    cell.hidden = collapsed;
  });
  table.querySelectorAll(`[data-stub="${tier}"]`).forEach((cell) => {
    cell.hidden = !collapsed;
  });
}

function placeRunColumn() {
  const rank = table.querySelector("thead th.sticky-rank:not(.sticky-span)");
  const run = table.querySelector("thead th.sticky-run");
  if (rank) table.style.setProperty("--rank-width", `${rank.getBoundingClientRect().width}px`);
  if (run) table.style.setProperty("--run-width", `${run.getBoundingClientRect().width}px`);
}

if (table) {
  const collapsed = loadCollapsed();
  for (const tier of collapsed) setTier(tier, true);
  table.querySelectorAll("button.tier-toggle").forEach((button) => {
    button.addEventListener("click", () => {
      const tier = button.dataset.toggle;
      const now = !collapsed.has(tier);
      if (now) collapsed.add(tier);
      else collapsed.delete(tier);
      setTier(tier, now);
      saveCollapsed(collapsed);
      placeRunColumn();
    });
  });
  placeRunColumn();
  window.addEventListener("resize", placeRunColumn);
  table.dataset.ready = "true";
}
