// Click a header of a table[data-sortable] to sort its rows. Numbers sort as numbers (from the
// cell's data-value, never its text), missing values always last; the first click sorts best
// first (the header's data-dir), the next click reverses.
function cellValue(row, index, numeric) {
  const cell = row.children[index];
  const raw = cell.dataset.value !== undefined ? cell.dataset.value : cell.textContent.trim();
  if (!numeric) return raw.toLowerCase();
  return raw === "" ? null : Number(raw);
}

function sortBy(table, th) {
  const headerRow = th.parentElement;
  const index = Array.prototype.indexOf.call(headerRow.children, th);
  const numeric = th.dataset.sort === "num";
  const first = th.dataset.dir || "asc";
  const current = th.classList.contains("sorted-asc") ? "asc" : th.classList.contains("sorted-desc") ? "desc" : null;
  const dir = current ? (current === "asc" ? "desc" : "asc") : first;
  const sign = dir === "asc" ? 1 : -1;
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  rows.sort((a, b) => {
    const x = cellValue(a, index, numeric);
    const y = cellValue(b, index, numeric);
    if (x === null && y === null) return 0;
    if (x === null) return 1;
    if (y === null) return -1;
    if (x < y) return -sign;
    if (x > y) return sign;
    return 0;
  });
  rows.forEach((row) => body.appendChild(row));
  headerRow.querySelectorAll("th").forEach((h) => h.classList.remove("sorted-asc", "sorted-desc"));
  th.classList.add(dir === "asc" ? "sorted-asc" : "sorted-desc");
  table.dataset.sortedBy = th.dataset.column || th.textContent.trim();
}

document.querySelectorAll("table[data-sortable]").forEach((table) => {
  const headerRow = table.tHead.rows[table.tHead.rows.length - 1];
  headerRow.querySelectorAll("th[data-sort]").forEach((th) => th.addEventListener("click", () => sortBy(table, th)));
});
