// voronka: the little behaviour the pages need — a funnel chart, and dragging deals on the kanban.
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

  function drawFunnel(id) {
    const element = document.getElementById(id);
    if (!element || !window.Plotly) return;
    const chart = JSON.parse(element.dataset.chart);
    window.Plotly.newPlot(element, chart.data, chart.layout, { displayModeBar: false, responsive: true });
    element.on("plotly_click", (event) => {
      const row = document.querySelectorAll("#funnel-table tbody tr")[event.points[0].pointNumber];
      const link = row && row.querySelector("a");
      if (link) window.location = link.href;
    });
  }

  function kanban() {
    let dragged = null;
    document.querySelectorAll(".deal-card").forEach((card) => {
      card.addEventListener("dragstart", (event) => {
        dragged = card;
        event.dataTransfer.setData("text/plain", card.dataset.dealId);
      });
    });
    const dialog = document.getElementById("lose-dialog");
    document.querySelectorAll(".column").forEach((column) => {
      column.addEventListener("dragover", (event) => { event.preventDefault(); column.classList.add("over"); });
      column.addEventListener("dragleave", () => column.classList.remove("over"));
      column.addEventListener("drop", (event) => {
        event.preventDefault();
        column.classList.remove("over");
        const id = event.dataTransfer.getData("text/plain") || (dragged && dragged.dataset.dealId);
        if (!id) return;
        if (column.dataset.outcome === "lose") {
          const form = document.getElementById("lose-form");
          form.action = "/deals/" + id + "/lose";
          dialog.showModal();
          return;
        }
        const url = column.dataset.outcome === "win" ? "/deals/" + id + "/win" : "/deals/" + id + "/move";
        post(url, column.dataset.stageId ? { stage_id: column.dataset.stageId } : {})
          .then(() => window.location.reload())
          .catch((error) => alert(error.message));
      });
    });
  }

  window.voronka = { drawFunnel, kanban, post };

  // No inline script on any page (the Content-Security-Policy forbids them): each page's parts
  // are found here and wired up once the document and its scripts are loaded.
  document.addEventListener("DOMContentLoaded", () => {
    if (document.getElementById("funnel-chart") && window.Plotly) {
      drawFunnel("funnel-chart");
      document.body.addEventListener("htmx:afterSwap", () => drawFunnel("funnel-chart"));
    }
    if (document.querySelector(".deal-card, .column")) kanban();
    document.querySelectorAll(".close-dialog").forEach((button) =>
      button.addEventListener("click", () => button.closest("dialog").close()));
  });
})();
