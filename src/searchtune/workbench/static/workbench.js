// Grading in place and sortable tables; vanilla JavaScript served by the workbench (nothing from the network).
"use strict";

function currentQuery() {
  const title = document.getElementById("query-title");
  return title ? {id: title.dataset.queryId, text: title.dataset.query} : null;
}

function showGrade(docId, grade) {
  // the same document may sit in every column: mark it everywhere
  document.querySelectorAll("li.hit").forEach((li) => {
    if (li.dataset.docId !== docId) return;
    li.classList.remove("unjudged", "g0", "g1", "g2", "g3");
    li.classList.add("graded", "g" + grade);
    li.querySelector(".grade-mark").textContent = "grade " + grade;
  });
}

async function grade(li, value) {
  const query = currentQuery();
  if (!query) return;
  const rater = document.getElementById("rater").value || "anonymous";
  localStorage.setItem("searchtune-rater", rater);
  const mark = li.querySelector(".grade-mark");
  mark.textContent = "saving…";
  const response = await fetch("/api/grades", {method: "POST", headers: {"content-type": "application/json"},
    body: JSON.stringify({grades: [{query_id: query.id, query: query.text, doc_id: li.dataset.docId,
                                    grade: Number(value), rater: rater}]})});
  const answer = await response.json();
  if (!response.ok) { mark.textContent = answer.error || "not saved"; return; }
  showGrade(li.dataset.docId, value);
  document.getElementById("list-version").textContent = answer.version;
}

function moveFocus(step) {
  const hits = Array.from(document.querySelectorAll("li.hit"));
  if (!hits.length) return;
  const at = hits.indexOf(document.activeElement);
  hits[Math.max(0, Math.min(hits.length - 1, at < 0 ? 0 : at + step))].focus();
}

function sortTable(table, column, type) {
  const body = table.tBodies[0];
  const rows = Array.from(body.rows);
  const ascending = table.dataset.sortColumn === String(column) ? table.dataset.sortOrder !== "asc" : type !== "num";
  const key = (row) => row.cells[column].dataset.value ?? row.cells[column].textContent;
  rows.sort((a, b) => {
    const x = key(a), y = key(b);
    const order = type === "num" ? Number(x) - Number(y) : String(x).localeCompare(String(y), undefined, {numeric: true});
    return ascending ? order : -order;
  });
  rows.forEach((row) => body.appendChild(row));
  table.dataset.sortColumn = String(column);
  table.dataset.sortOrder = ascending ? "asc" : "desc";
}

document.addEventListener("DOMContentLoaded", () => {
  const rater = document.getElementById("rater");
  if (rater && localStorage.getItem("searchtune-rater")) rater.value = localStorage.getItem("searchtune-rater");
  document.querySelectorAll(".grade-button").forEach((button) =>
    button.addEventListener("click", () => grade(button.closest("li.hit"), button.dataset.grade)));
  document.querySelectorAll("table.sortable").forEach((table) =>
    table.querySelectorAll("thead th").forEach((th, column) =>
      th.addEventListener("click", () => sortTable(table, column, th.dataset.type))));
  document.addEventListener("keydown", (event) => {
    const target = event.target;
    if (target.tagName === "INPUT" || target.tagName === "SELECT" || event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "j" || event.key === "ArrowDown") { moveFocus(1); event.preventDefault(); }
    else if (event.key === "k" || event.key === "ArrowUp") { moveFocus(-1); event.preventDefault(); }
    else if (/^[0-3]$/.test(event.key)) {
      const li = target.closest ? target.closest("li.hit") : null;
      const allowed = li && li.querySelector('.grade-button[data-grade="' + event.key + '"]');
      if (allowed) { grade(li, event.key); event.preventDefault(); }
    }
  });
});
