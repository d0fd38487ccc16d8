// voronka: the little behaviour the pages need — dragging deals on the kanban (mouse and touch),
// with a few seconds to undo a move, win or loss. The funnel chart is SVG drawn by the server.
(function () {
  "use strict";
  const csrf = () => document.querySelector('meta[name="csrf-token"]').content;

  function post(url, fields) {
    const body = new URLSearchParams(fields || {});
    return fetch(url, {
      method: "POST",
      body,
      headers: { "X-CSRF-Token": csrf(), Accept: "application/json" },
      credentials: "same-origin",
    }).then((response) => {
      if (!response.ok) return response.json().then((p) => Promise.reject(new Error(p.detail || response.status)));
      return response;
    });
  }

  // After a move, win or loss on the kanban: a few seconds to take it back.
  const UNDO_MS = 8000;
  function offerUndo(dealId, kind) {
    sessionStorage.setItem("voronka-undo", JSON.stringify({ dealId, kind, until: Date.now() + UNDO_MS }));
  }

  function showUndo() {
    const toast = document.getElementById("toast");
    const texts = document.getElementById("undo-texts");
    const saved = JSON.parse(sessionStorage.getItem("voronka-undo") || "null");
    if (!toast || !texts || !saved || saved.until < Date.now()) return;
    toast.querySelector("span").textContent = texts.dataset[saved.kind] || "";
    toast.hidden = false;
    const hide = () => { toast.hidden = true; sessionStorage.removeItem("voronka-undo"); };
    const timer = setTimeout(hide, saved.until - Date.now());
    document.getElementById("toast-undo").onclick = () => {
      clearTimeout(timer);
      hide();
      post("/deals/" + saved.dealId + "/undo").then(() => window.location.reload()).catch((e) => alert(e.message));
    };
  }

  function dropOn(column, card) {
    const id = card.dataset.dealId;
    if (column.dataset.outcome === "lose") {
      const dialog = document.getElementById("lose-dialog");
      document.getElementById("lose-form").dataset.dealId = id;
      document.getElementById("lose-title").textContent = card.dataset.title || "#" + id;
      dialog.showModal();
      return;
    }
    if (column.dataset.outcome === "win" && !card.dataset.hasAmount) {
      // A sale without its amount would count nothing in revenue: ask for it first.
      const dialog = document.getElementById("win-dialog");
      document.getElementById("win-dialog-form").dataset.dealId = id;
      document.getElementById("win-title").textContent = card.dataset.title || "#" + id;
      dialog.showModal();
      return;
    }
    if (column.dataset.stageId && card.closest(".column") === column) return;
    const url = column.dataset.outcome === "win" ? "/deals/" + id + "/win" : "/deals/" + id + "/move";
    post(url, column.dataset.stageId ? { stage_id: column.dataset.stageId } : {})
      .then(() => { offerUndo(id, column.dataset.outcome === "win" ? "won" : "moved"); window.location.reload(); })
      .catch((error) => alert(error.message));
  }

  function kanban() {
    let dragged = null;
    document.querySelectorAll(".deal-card").forEach((card) => {
      card.addEventListener("dragstart", (event) => {
        dragged = card;
        event.dataTransfer.setData("text/plain", card.dataset.dealId);
      });
      // A finger (or pen) drags by the handle: pointer events, since touch screens send no drag events.
      const handle = card.querySelector(".handle");
      if (handle) handle.addEventListener("pointerdown", (event) => touchDrag(event, card));
    });
    document.querySelectorAll(".column").forEach((column) => {
      column.addEventListener("dragover", (event) => { event.preventDefault(); column.classList.add("over"); });
      column.addEventListener("dragleave", () => column.classList.remove("over"));
      column.addEventListener("drop", (event) => {
        event.preventDefault();
        column.classList.remove("over");
        if (dragged) dropOn(column, dragged);
      });
    });
    // Any stage, won or lost by finger or keyboard: the card's "Move to…" list does what a drop does.
    document.querySelectorAll(".deal-card select.move-to").forEach((select) =>
      select.addEventListener("change", () => {
        const option = select.selectedOptions[0];
        if (!option || !option.value) return;
        const target = option.dataset.target;
        const column = target === "won" ? document.querySelector("section.drop-won")
          : target === "lost" ? document.querySelector("section.drop-lost")
          : document.querySelector('section.column[data-stage-id="' + option.value + '"]');
        select.value = "";
        if (column) dropOn(column, select.closest(".deal-card"));
      }));
    const winForm = document.getElementById("win-dialog-form");
    if (winForm) winForm.addEventListener("submit", (event) => {
      event.preventDefault();
      const id = winForm.dataset.dealId;
      post("/deals/" + id + "/win", { amount: winForm.elements.amount.value })
        .then(() => { offerUndo(id, "won"); window.location.reload(); })
        .catch((error) => alert(error.message));
    });
    const form = document.getElementById("lose-form");
    if (form) form.addEventListener("submit", (event) => {
      event.preventDefault();
      const id = form.dataset.dealId;
      post("/deals/" + id + "/lose", { reason: form.elements.reason.value })
        .then(() => { offerUndo(id, "lost"); window.location.reload(); })
        .catch((error) => alert(error.message));
    });
  }

  function touchDrag(start, card) {
    if (start.pointerType === "mouse") return;
    start.preventDefault();
    const ghost = card.cloneNode(true);
    ghost.classList.add("ghost");
    ghost.style.width = card.offsetWidth + "px";
    document.body.appendChild(ghost);
    const place = (event) => {
      ghost.style.left = event.clientX - 20 + "px";
      ghost.style.top = event.clientY - 20 + "px";
    };
    const columnAt = (event) => {
      const under = document.elementFromPoint(event.clientX, event.clientY);
      return under && under.closest(".column");
    };
    place(start);
    let over = null;
    const board = card.closest(".board");
    const move = (event) => {
      place(event);
      // Near the screen's edge the board scrolls on, so a finger reaches every column.
      if (board && event.clientX > window.innerWidth - 40) board.scrollLeft += 30;
      else if (board && event.clientX < 40) board.scrollLeft -= 30;
      const column = columnAt(event);
      if (over && over !== column) over.classList.remove("over");
      over = column;
      if (over) over.classList.add("over");
    };
    const end = (event) => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", end);
      document.removeEventListener("pointercancel", cancel);
      ghost.remove();
      if (over) over.classList.remove("over");
      const column = columnAt(event);
      if (column) dropOn(column, card);
    };
    const cancel = () => {
      document.removeEventListener("pointermove", move);
      document.removeEventListener("pointerup", end);
      document.removeEventListener("pointercancel", cancel);
      ghost.remove();
    };
    document.addEventListener("pointermove", move);
    document.addEventListener("pointerup", end);
    document.addEventListener("pointercancel", cancel);
  }

  window.voronka = { kanban, post };

  // No inline script on any page (the Content-Security-Policy forbids them): each page's parts
  // are found here and wired up once the document and its scripts are loaded.
  document.addEventListener("DOMContentLoaded", () => {
    if (document.querySelector(".deal-card, .column")) kanban();
    showUndo();
    // The header's pipeline picker: a choice opens the page for that pipeline (and is remembered).
    document.querySelectorAll(".pipeline-picker select").forEach((select) =>
      select.addEventListener("change", () => select.form.submit()));
    document.querySelectorAll(".close-dialog").forEach((button) =>
      button.addEventListener("click", () => button.closest("dialog").close()));
  });

  // A filter the server refuses (a period that ends before it starts): htmx would leave the old
  // figures in place without a word, so the page is opened in full and shows the reason.
  document.addEventListener("htmx:responseError", (event) => {
    if (event.detail.requestConfig.verb === "get") window.location.assign(event.detail.xhr.responseURL);
  });
  // After the dashboard's filter redraws the board, the header's picker names the same pipeline.
  document.addEventListener("htmx:afterSettle", (event) => {
    const chosen = event.detail.requestConfig && event.detail.requestConfig.parameters.pipeline;
    const header = document.querySelector(".pipeline-picker select");
    if (!chosen || !header) return;
    if (Array.from(header.options).some((option) => option.value === chosen)) header.value = chosen;
  });
})();
