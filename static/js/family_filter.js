// The leaderboard's family filter: only the rows of the chosen model family are shown (their ranks stay
// those of the whole board). The select is also part of the ranking form, so `?family=` keeps the choice.
const select = document.getElementById("family-filter");
const table = document.getElementById("leaderboard");

function apply() {
  if (!table) return;
  for (const row of table.querySelectorAll("tbody tr[data-run]")) {
    row.hidden = Boolean(select.value) && row.dataset.family !== select.value;
  }
  table.dataset.family = select.value;
}

if (select) {
  select.addEventListener("change", apply);
  apply();
}
