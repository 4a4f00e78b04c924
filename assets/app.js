// weight-converter: the little behaviour htmx's attributes cannot express.
// Loaded as a file so the page's CSP needs no inline script and no eval.
(function () {
  "use strict";

  var view = function () {
    var main = document.querySelector("[data-view]");
    return main ? main.getAttribute("data-view") : null;
  };

  // ArrowUp / ArrowDown step like + / −, as in a number input.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
    var input = e.target;
    if (!(input instanceof HTMLInputElement) || !input.form) return;
    var button = input.form.querySelector('button[name="step"][value="' + (e.key === "ArrowUp" ? "up" : "down") + '"]');
    if (!button) return;
    e.preventDefault();
    input.form.requestSubmit(button);
  });

  // htmx sends the name/value of the last *clicked* button, not of the
  // submit event's submitter, so a step started by a key press (above)
  // would post as a plain "set". Send the submitter explicitly.
  document.addEventListener("htmx:configRequest", function (e) {
    var trigger = e.detail.triggeringEvent;
    var submitter = trigger && trigger.submitter;
    if (submitter && submitter.name) e.detail.parameters[submitter.name] = submitter.value;
  });

  // Enter in a field fires "change" and then "submit": one commit, two
  // triggers. Send the first and drop a plain submit of the same value
  // that follows it at once.
  var lastCommit = new WeakMap(); // form → {value, at}
  document.addEventListener("htmx:configRequest", function (e) {
    var form = e.detail.elt;
    if (!(form instanceof HTMLFormElement) || e.detail.parameters.step) return;
    var input = form.querySelector("input[inputmode=decimal]");
    if (!input) return;
    // By value: by the time a queued submit goes, "10" may show as "10.00".
    // What is not a number is compared as typed (NaN equals nothing).
    var text = String(e.detail.parameters[input.name] || "").trim();
    var number = text === "" ? 0 : Number(text);
    var value = Number.isNaN(number) ? "text:" + text : number;
    var last = lastCommit.get(form);
    var now = performance.now();
    if (last && last.value === value && now - last.at < 500) {
      e.preventDefault();
      return;
    }
    lastCommit.set(form, { value: value, at: now });
  });

  // Once a commit is accepted, show it as Streamlit does: two decimals.
  // Only if the field still holds what was sent, so later typing is kept.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (!e.detail.successful || !(form instanceof HTMLFormElement)) return;
    var params = e.detail.requestConfig && e.detail.requestConfig.parameters;
    if (!params || params.step) return;
    Array.prototype.forEach.call(form.querySelectorAll("input[inputmode=decimal]"), function (input) {
      var sent = params[input.name];
      if (typeof sent !== "string" || input.value !== sent) return;
      var value = sent.trim() === "" ? 0 : Number(sent);
      if (Number.isFinite(value) && Math.abs(value) < 1e21) {
        input.value = input.defaultValue = (value + 0).toFixed(2);
      }
    });
  });

  // A committed field has no unsaved text any more.
  document.addEventListener("change", function (e) {
    if (e.target instanceof HTMLInputElement) e.target.defaultValue = e.target.value;
  });

  // True while htmx applies a server-sent event rather than a response to
  // this view's own request.
  var fromStream = false;
  document.addEventListener("htmx:sseBeforeMessage", function (e) {
    // When tabs share one stream, drop this view's own echo here.
    var me = view();
    if (me && e.detail && typeof e.detail.data === "string" &&
        e.detail.data.indexOf('data-origin="' + me + '"') !== -1) {
      e.preventDefault();
      return;
    }
    fromStream = true;
  });
  document.addEventListener("htmx:sseMessage", function () { fromStream = false; });

  // null for an element that goes with no particular state, such as the
  // message that the session store could not be reached.
  var version = function (el) {
    var v = el && el.getAttribute && el.getAttribute("data-version");
    return v === null || v === undefined ? null : Number(v);
  };

  document.addEventListener("htmx:oobBeforeSwap", function (e) {
    var target = e.detail.target;
    var incoming = e.detail.fragment && e.detail.fragment.firstElementChild;
    if (!target || !incoming) return;
    // Never go back in time: a late response loses to a newer event.
    var incomingVersion = version(incoming), targetVersion = version(target);
    if (incomingVersion !== null && targetVersion !== null && incomingVersion < targetVersion) {
      e.preventDefault();
      return;
    }
    if (target instanceof HTMLInputElement && incoming instanceof HTMLInputElement) {
      e.preventDefault();
      var typing = target === document.activeElement && target.value !== target.defaultValue;
      if (typing && fromStream) return; // keep what the user is typing
      // Update in place: the element, its focus and its caret stay.
      target.defaultValue = incoming.defaultValue;
      target.value = incoming.value;
      ["data-version", "aria-invalid"].forEach(function (name) {
        if (incoming.hasAttribute(name)) target.setAttribute(name, incoming.getAttribute(name));
        else target.removeAttribute(name);
      });
    }
  });
})();

// Every tab of this origin shares one event stream per session through a
// SharedWorker (see stream-worker.js). htmx's SSE extension asks
// htmx.createEventSource for its stream; this hands it an EventSource
// look-alike fed by the worker, or a direct EventSource where that can't
// work (no SharedWorker, or a stream on another origin).
(function () {
  "use strict";
  if (!window.SharedWorker || !window.htmx) return;
  var main = document.querySelector("[data-stream-worker]");
  var workerUrl = main && main.getAttribute("data-stream-worker");
  if (!workerUrl) return;

  var direct = function (url) { return new EventSource(url, { withCredentials: true }); };

  function SharedStream(url) {
    var target = new EventTarget();
    var stream = this;
    this.url = url;
    this.readyState = 0; // CONNECTING
    this.onopen = null;
    this.onerror = null;
    this.addEventListener = target.addEventListener.bind(target);
    this.removeEventListener = target.removeEventListener.bind(target);
    var worker = new SharedWorker(workerUrl, { name: "weight-converter-streams" });
    this.port = worker.port;
    this.port.onmessage = function (e) {
      var msg = e.data || {};
      if (msg.type === "open") {
        stream.readyState = 1;
        if (stream.onopen) stream.onopen(new Event("open"));
      } else if (msg.type === "error") {
        stream.readyState = msg.readyState;
        if (stream.onerror) stream.onerror(new Event("error"));
      } else if (msg.type === "message") {
        target.dispatchEvent(new MessageEvent(msg.event, { data: msg.data, lastEventId: msg.lastEventId }));
      }
    };
    this.port.start();
    // The per-tab view id stays out of the shared URL; this page drops its
    // own echoes itself (see htmx:sseBeforeMessage).
    var shared = new URL(url, location.href);
    shared.searchParams.delete("view");
    this.port.postMessage({ type: "open", url: shared.href });
    window.addEventListener("pagehide", function () { stream.close(); });
  }
  SharedStream.prototype.close = function () {
    if (this.readyState === 2) return;
    this.readyState = 2; // CLOSED
    this.port.postMessage({ type: "close" });
  };

  htmx.createEventSource = function (url) {
    var absolute = new URL(url, location.href);
    if (absolute.origin !== location.origin) return direct(url);
    try {
      return new SharedStream(absolute.href);
    } catch (err) {
      return direct(url);
    }
  };
})();
