// cvbench leaderboard: table sorting, filters, interval toggle and the sample browser.
// No network access, no innerHTML: every piece of model-provided text goes in via textContent.
"use strict";

(function () {
  // ------------------------------------------------------------------ tables

  function sortValue(cell, type) {
    var raw = cell ? cell.getAttribute("data-sort") : null;
    if (raw === null) raw = cell ? cell.textContent.trim() : "";
    if (raw === "") return null;
    if (type === "num") {
      var n = parseFloat(raw);
      return isNaN(n) ? null : n;
    }
    return raw.toLowerCase();
  }

  function sortTable(table, th, button) {
    var index = th.cellIndex;
    var type = button.getAttribute("data-type") || "text";
    var current = th.getAttribute("aria-sort");
    var isRank = th.classList.contains("rank-h");
    var firstDir = (type === "num" && !isRank) ? "descending" : "ascending";
    var dir = current === firstDir ? (firstDir === "ascending" ? "descending" : "ascending") : firstDir;
    var headers = table.tHead.querySelectorAll("th[aria-sort]");
    for (var i = 0; i < headers.length; i++) headers[i].setAttribute("aria-sort", "none");
    th.setAttribute("aria-sort", dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    var keyed = rows.map(function (row, pos) {
      return { row: row, pos: pos, key: sortValue(row.cells[index], type) };
    });
    keyed.sort(function (a, b) {
      if (a.key === null && b.key === null) return a.pos - b.pos;
      if (a.key === null) return 1;  // missing values always last
      if (b.key === null) return -1;
      var c = a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
      if (dir === "descending") c = -c;
      return c !== 0 ? c : a.pos - b.pos;
    });
    keyed.forEach(function (k) { body.appendChild(k.row); });
  }

  function setupSorting() {
    var tables = document.querySelectorAll("table.lb");
    Array.prototype.forEach.call(tables, function (table) {
      var buttons = table.tHead.querySelectorAll("button.sort");
      Array.prototype.forEach.call(buttons, function (button) {
        button.addEventListener("click", function () {
          sortTable(table, button.closest("th"), button);
        });
      });
    });
  }

  function applyFilters(form) {
    var access = {};
    var known = {};
    form.querySelectorAll("input.filter-access").forEach(function (box) {
      known[box.value] = true;
      access[box.value] = box.checked;
    });
    var originBox = form.querySelector("input.filter-origin");
    var showReported = !originBox || originBox.checked;
    var sizeSelect = form.querySelector("select.filter-size");
    var size = sizeSelect ? sizeSelect.value : "";
    document.querySelectorAll("table.lb tbody tr").forEach(function (row) {
      var origin = row.getAttribute("data-origin");
      var acc = row.getAttribute("data-access");
      var visible = true;
      if (origin !== "chance") {
        if (known[acc] && !access[acc]) visible = false;
        if (origin === "reported" && !showReported) visible = false;
        if (size && row.getAttribute("data-size") !== size) visible = false;
      }
      row.classList.toggle("hidden", !visible);
    });
  }

  function setupControls() {
    var form = document.querySelector("form.controls:not([aria-label='Filter samples'])");
    if (!form || !document.querySelector("table.lb")) return;
    form.addEventListener("submit", function (e) { e.preventDefault(); });
    form.querySelectorAll("input.filter-access, input.filter-origin, select.filter-size").forEach(function (el) {
      el.addEventListener("change", function () { applyFilters(form); });
    });
    var ci = form.querySelector("input.toggle-ci");
    if (ci) {
      ci.addEventListener("change", function () { document.body.classList.toggle("show-ci", ci.checked); });
    }
    applyFilters(form);
  }

  // ------------------------------------------------------------------ sample browser

  function el(tag, text, className) {
    var node = document.createElement(tag);
    if (text !== undefined && text !== null) node.textContent = String(text);
    if (className) node.className = className;
    return node;
  }

  function setupBrowser() {
    var dataNode = document.getElementById("samples-data");
    if (!dataNode) return;
    var data = JSON.parse(dataNode.textContent);
    var records = data.records;
    var imageMode = data.image_mode || "exact";
    var byId = {};
    records.forEach(function (r) { byId[r.id] = r; });
    var sliceSelect = document.getElementById("sample-slice");
    var statusSelect = document.getElementById("sample-status");
    var list = document.getElementById("sample-list");
    var detail = document.getElementById("sample-detail");
    var count = document.getElementById("sample-count");
    var currentId = null;

    data.slices.forEach(function (s) {
      var opt = el("option", s.label);
      opt.value = s.value;
      sliceSelect.appendChild(opt);
    });

    function matches(r) {
      var slice = sliceSelect.value;
      if (slice) {
        var parts = slice.split("|");
        if (r.evaluation !== parts[0]) return false;
        if (parts.length > 1 && r.slices.indexOf(parts[1]) < 0) return false;
      }
      return !statusSelect.value || r.status === statusSelect.value;
    }

    function renderList() {
      list.textContent = "";
      var shown = 0;
      records.forEach(function (r) {
        if (!matches(r)) return;
        shown += 1;
        var li = el("li");
        var button = el("button");
        button.type = "button";
        button.setAttribute("data-id", r.id);
        button.appendChild(el("span", r.id));
        button.appendChild(el("span", r.status, "st st-" + r.status));
        if (r.id === currentId) button.setAttribute("aria-current", "true");
        button.addEventListener("click", function () {
          location.hash = "sample=" + encodeURIComponent(r.id);
        });
        li.appendChild(button);
        list.appendChild(li);
      });
      count.textContent = shown + " of " + records.length + " shown";
    }

    function field(dl, name, value) {
      dl.appendChild(el("dt", name));
      dl.appendChild(el("dd", value === null || value === undefined || value === "" ? "–" : value));
    }

    function showRecord(id) {
      var r = byId[id];
      detail.textContent = "";
      if (!r) {
        detail.appendChild(el("p", "Sample " + id + " is not included in this site.", "warn"));
        return;
      }
      if (!matches(r)) {
        sliceSelect.value = "";
        statusSelect.value = "";
      }
      currentId = id;
      renderList();
      var h = el("h3", r.id);
      h.id = "sample-title";
      detail.appendChild(h);
      var dl = el("dl");
      field(dl, "Outcome", r.status);
      field(dl, "Parsed answer", r.parsed);
      field(dl, "Right answer", r.answer);
      field(dl, "Parse status", r.parse_status + (r.parse_reason ? " (" + r.parse_reason + ")" : ""));
      if (r.judge) field(dl, "Judge", r.judge);
      if (r.error) field(dl, "Error", r.error);
      if (r.invalid) field(dl, "Invalid", r.invalid);
      field(dl, "Slices", r.slices.join(", "));
      field(dl, "Source", r.source);
      field(dl, "Cluster", r.cluster);
      field(dl, "Mode", r.mode);
      detail.appendChild(dl);
      var images = el("div", null, "images");
      var shas = r.image_sha256 || [];
      if (imageMode === "none") {
        images.appendChild(el("p", "Images are not included in this site (built with --images none); " +
          "the run directory holds them by sha256: " + shas.join(", ") + ".", "note"));
      } else {
        if (imageMode === "preview" && r.images.length) {
          images.appendChild(el("p", "Downscaled JPEG previews; the exact images the model saw are in the " +
            "run directory by sha256.", "note"));
        }
        r.images.forEach(function (src, i) {
          if (!src) {
            images.appendChild(el("p", "Image " + (i + 1) + " is missing from the run directory.", "warn"));
            return;
          }
          var img = document.createElement("img");
          img.src = src;
          img.alt = "Image " + (i + 1) + " of " + r.id;
          img.title = "Image " + (i + 1) + (imageMode === "preview" ? " (preview)" : "") +
            (shas[i] ? ", sha256 " + shas[i] : "");
          images.appendChild(img);
        });
      }
      detail.appendChild(images);
      if (r.regions) {
        // native mode: the referenced regions drawn for the reader; the model received masks
        var fig = el("figure", null, "regions");
        var cap = el("figcaption", null);
        cap.appendChild(el("strong", "Regions "));
        cap.appendChild(el("span", r.regions.label, "display-only"));
        fig.appendChild(cap);
        r.regions.images.forEach(function (src, i) {
          var img = document.createElement("img");
          img.src = src;
          img.alt = "Image " + (i + 1) + " of " + r.id + " with its regions drawn (" + r.regions.label + ")";
          fig.appendChild(img);
        });
        var legend = el("ol", null, "legend");
        r.regions.legend.forEach(function (l) {
          var li = el("li", null);
          var swatch = el("span", null, "swatch");
          swatch.style.background = l.colour;
          li.appendChild(swatch);
          li.appendChild(document.createTextNode(" <region> " + l.number + ": image " + l.view + ", object " + l.name));
          legend.appendChild(li);
        });
        fig.appendChild(legend);
        detail.appendChild(fig);
      }
      detail.appendChild(el("h4", "Prompt"));
      detail.appendChild(el("pre", r.prompt, "prompt"));
      detail.appendChild(el("h4", "Raw response"));
      detail.appendChild(el("pre", r.response === null ? "(none)" : r.response, "response"));
      var ul = el("ul", null, "options");
      r.options.forEach(function (o) {
        var li = el("li", o[0] + ". " + o[1]);
        if (o[0] === r.answer) li.appendChild(el("strong", "  ← right answer"));
        if (o[0] === r.parsed && r.parsed !== r.answer) li.appendChild(el("strong", "  ← model's answer"));
        ul.appendChild(li);
      });
      detail.appendChild(el("h4", "Options"));
      detail.appendChild(ul);
      var active = list.querySelector("button[aria-current='true']");
      if (active && active.scrollIntoView) active.scrollIntoView({ block: "nearest" });
    }

    function fromHash() {
      var hash = location.hash;
      if (hash.indexOf("#sample=") === 0) {
        var id;
        try { id = decodeURIComponent(hash.slice(8)); } catch (e) { id = hash.slice(8); }
        showRecord(id);
        document.getElementById("samples").scrollIntoView();
      }
    }

    sliceSelect.addEventListener("change", renderList);
    statusSelect.addEventListener("change", renderList);
    window.addEventListener("hashchange", fromHash);
    renderList();
    fromHash();
  }

  function init() {
    setupSorting();
    setupControls();
    setupBrowser();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", init);
  else init();
})();
