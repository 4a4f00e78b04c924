// weight-converter: what htmx's attributes cannot express. Loaded as a
// file, so the page's CSP needs no inline script and no eval.
//
// The same file runs in two places:
// - in a page (ours, or another site's that embeds fragments): it keeps
//   every live view on the page in step, and adds keyboard stepping;
// - as the SharedWorker that holds the one event stream all of this
//   origin's tabs share.
//
// Why one stream: a browser allows 6 HTTP/1.1 connections per host, and
// an open event stream holds one. `GET /events?s=…&v=…` carries many
// sessions, each event naming its own, so one connection serves every
// view in every tab.
(function (global) {
  "use strict";

  // The server's cap on sessions per stream; past it, another stream.
  var SESSIONS_PER_STREAM = 32;
  // How often the hub asks its clients whether they are still there: a
  // tab the browser discarded never says goodbye.
  var ROLL_CALL_EVERY = 30000;
  // Changes to what clients watch within this long of a switch of streams
  // wait for one more switch, together.
  var SWITCH_GAP = 50;

  // ------------------------------------------------------------ the hub

  // Holds the event streams for its clients (tabs, or views of one page)
  // and sends each client what concerns the sessions it watches:
  //   {type: "state", label, html} | {type: "down", label} | {type: "gone", label}
  // `emit(client, message)` delivers one message to one client.
  function Hub(emit) {
    this.emit = emit;
    this.clients = new Map(); // client → {url, labels: Set}
    this.streams = []; // {url, labels: Set, source, state, failures, timer}
    this.last = new Map(); // label → newest html, for clients that join late
    this.gone = new Set();
    this.round = 0; // of roll-calls
    this.switched = 0; // when the streams last changed, in ms
  }

  Hub.prototype.watch = function (client, url, labels) {
    this.clients.set(client, { url: url, labels: new Set(labels), round: this.round });
    this.rollCalls();
    // A client that joins a stream already open catches up from the
    // newest event; a stream that (re)opens starts with every snapshot.
    var hub = this;
    labels.forEach(function (label) {
      if (hub.gone.has(label)) return hub.emit(client, { type: "gone", label: label });
      var stream = hub.streamOf(url, label);
      if (!stream) return;
      if (stream.state === "down") hub.emit(client, { type: "down", label: label });
      else if (stream.state === "live" && hub.last.has(label)) {
        hub.emit(client, { type: "state", label: label, html: hub.last.get(label) });
      }
    });
    this.later();
  };

  Hub.prototype.leave = function (client) {
    if (this.clients.delete(client)) this.later();
  };

  // Every ROLL_CALL_EVERY, each client is asked to say again what it
  // watches; one that has not answered for two rounds is gone, and so are
  // its sessions from the streams. Counted in rounds, not time, so a timer
  // the browser slows down (a background leader tab) drops nobody alive.
  Hub.prototype.rollCalls = function () {
    var hub = this;
    if (hub.rollTimer) return;
    hub.rollTimer = setInterval(function () {
      hub.round += 1;
      var dropped = false;
      hub.clients.forEach(function (client, id) {
        if (client.round < hub.round - 2) {
          hub.clients.delete(id);
          dropped = true;
        } else {
          hub.emit(id, { type: "roll-call" });
        }
      });
      if (dropped) hub.later();
      if (hub.clients.size === 0) {
        clearInterval(hub.rollTimer);
        hub.rollTimer = null;
      }
    }, ROLL_CALL_EVERY);
  };

  // Tabs come and go together (a browser restoring its tabs, every tab
  // answering a new leader): one switch of streams for all of them. A
  // lone change is taken at once (after the task that made it, so changes
  // made together count as one); only one that follows a switch closely
  // waits on a timer, which in a background leader tab the browser may
  // hold back for a second or more.
  Hub.prototype.later = function () {
    var hub = this;
    if (hub.pending) return;
    hub.pending = true;
    var run = function () {
      hub.pending = false;
      hub.switched = Date.now();
      hub.sync();
    };
    var wait = hub.switched + SWITCH_GAP - Date.now();
    if (wait > 0) setTimeout(run, wait);
    else Promise.resolve().then(run);
  };

  Hub.prototype.streamOf = function (url, label) {
    return this.streams.find(function (s) { return s.url === url && s.labels.has(label); });
  };

  // Makes the streams carry exactly the sessions some client watches.
  Hub.prototype.sync = function () {
    var hub = this;
    if (hub.closed) return;
    var wanted = new Map(); // url → Set of labels not carried yet
    this.clients.forEach(function (client) {
      var set = wanted.get(client.url) || new Set();
      client.labels.forEach(function (label) { if (!hub.gone.has(label)) set.add(label); });
      wanted.set(client.url, set);
    });
    var changed = new Set();
    this.streams.forEach(function (stream) {
      var want = wanted.get(stream.url) || new Set();
      Array.from(stream.labels).forEach(function (label) {
        if (want.has(label)) return want.delete(label);
        stream.labels.delete(label);
        hub.last.delete(label);
        changed.add(stream);
      });
    });
    wanted.forEach(function (labels, url) {
      labels.forEach(function (label) {
        var stream = hub.streams.find(function (s) {
          return s.url === url && s.labels.size < SESSIONS_PER_STREAM;
        });
        if (!stream) {
          stream = {
            url: url, labels: new Set(), source: null, state: "opening", failures: 0, timer: null,
            heard: 0, quietFor: 0,
          };
          hub.streams.push(stream);
        }
        stream.labels.add(label);
        changed.add(stream);
      });
    });
    changed.forEach(function (stream) {
      // One waiting to retry after a refusal keeps waiting, with the new set.
      if (!(stream.timer && stream.state === "down" && stream.labels.size > 0)) hub.open(stream);
    });
    this.streams = this.streams.filter(function (s) { return s.labels.size > 0; });
  };

  // Closes every stream and forgets every client: a leader stepping down.
  Hub.prototype.close = function () {
    this.closed = true;
    this.clients.clear();
    this.streams.forEach(function (stream) {
      clearTimeout(stream.timer);
      if (stream.source) stream.source.close();
    });
    this.streams = [];
    clearInterval(this.rollTimer);
    clearInterval(this.silenceTimer);
  };

  Hub.prototype.toWatchers = function (url, label, message) {
    var hub = this;
    this.clients.forEach(function (client, id) {
      if (client.url === url && client.labels.has(label)) hub.emit(id, message);
    });
  };

  // A stream can die without an error: a network that changed under it,
  // a NAT that forgot it. Pings come every `quietFor` ms; one that stays
  // silent for two of them and then some (up to 5 s, for a late timer in
  // a background tab) is down, and opened again. Checked as often as
  // pings come, at most every 5 s.
  Hub.prototype.watchForSilence = function (every) {
    var hub = this;
    if (hub.silenceTimer) return;
    hub.silenceTimer = setInterval(function () {
      var now = Date.now();
      hub.streams.forEach(function (stream) {
        if (stream.state !== "live" || !stream.quietFor) return;
        var slack = Math.min(5000, 2 * stream.quietFor);
        if (now - stream.heard <= 2 * stream.quietFor + slack) return;
        hub.down(stream);
        hub.open(stream);
      });
      if (hub.streams.length === 0) {
        clearInterval(hub.silenceTimer);
        hub.silenceTimer = null;
      }
    }, Math.min(5000, every));
  };

  // Marks `stream` down, and tells everyone watching its sessions.
  Hub.prototype.down = function (stream) {
    var hub = this;
    stream.state = "down";
    stream.labels.forEach(function (label) {
      hub.toWatchers(stream.url, label, { type: "down", label: label });
    });
  };

  // Retries `stream` later, ever more slowly, at a random point so tabs
  // and browsers do not come back together.
  Hub.prototype.retry = function (stream) {
    var hub = this;
    clearTimeout(stream.timer);
    stream.failures += 1;
    var delay = Math.min(30000, 1000 * Math.pow(2, Math.min(stream.failures, 5)));
    stream.timer = setTimeout(function () { hub.open(stream); }, delay * (0.5 + Math.random() / 2));
  };

  Hub.prototype.open = function (stream) {
    var hub = this;
    if (stream.source) stream.source.close();
    clearTimeout(stream.timer);
    stream.timer = null;
    stream.source = null;
    if (stream.labels.size === 0) return;
    // A switch to a new set of sessions is no outage: only a stream that
    // was down stays down until it opens.
    if (stream.state !== "down") stream.state = "opening";
    var query = Array.from(stream.labels).sort().map(function (label) {
      return label.charAt(0) + "=" + encodeURIComponent(label.slice(2));
    }).join("&");
    var source = new EventSource(stream.url + "?" + query);
    stream.source = source;
    var mine = function () { return stream.source === source; };
    var heard = function () { stream.heard = Date.now(); };
    // Every event's first data line names its session.
    var split = function (data) {
      var cut = data.indexOf("\n");
      return cut < 0 ? [data, ""] : [data.slice(0, cut), data.slice(cut + 1)];
    };
    source.onopen = function () {
      if (!mine()) return;
      stream.state = "live";
      stream.failures = 0;
      heard();
    };
    // The server's keep-alive, with how often it comes (ms).
    source.addEventListener("ping", function (e) {
      if (!mine()) return;
      heard();
      var every = Number(e.data);
      if (every > 0) stream.quietFor = every;
      hub.watchForSilence(stream.quietFor || 5000);
    });
    source.addEventListener("state", function (e) {
      var parts = split(e.data);
      if (!mine() || !stream.labels.has(parts[0])) return;
      heard();
      stream.state = "live";
      hub.last.set(parts[0], parts[1]);
      hub.toWatchers(stream.url, parts[0], { type: "state", label: parts[0], html: parts[1] });
    });
    source.addEventListener("gone", function (e) {
      var label = split(e.data)[0];
      if (!mine() || !stream.labels.has(label)) return;
      hub.gone.add(label);
      hub.last.delete(label);
      hub.toWatchers(stream.url, label, { type: "gone", label: label });
      hub.later();
    });
    // The server could not take this session on now (too many views of
    // it): the others go on; this one waits, and the stream tries again.
    source.addEventListener("busy", function (e) {
      var label = split(e.data)[0];
      if (!mine() || !stream.labels.has(label)) return;
      hub.toWatchers(stream.url, label, { type: "down", label: label });
      if (!stream.timer) hub.retry(stream);
    });
    source.onerror = function () {
      if (!mine()) return;
      hub.down(stream);
      // The browser retries a dropped stream itself; one the server
      // refused (store down, too busy) it gives up on, so retry here.
      if (source.readyState === EventSource.CLOSED) hub.retry(stream);
    };
  };

  // --------------------------------------------------- as a SharedWorker

  if (typeof document === "undefined") {
    if (typeof global.onconnect === "undefined") return;
    var hub = new Hub(function (port, message) { port.postMessage(message); });
    global.onconnect = function (connect) {
      var port = connect.ports[0];
      port.onmessage = function (e) {
        var msg = e.data || {};
        if (msg.type === "watch" && typeof msg.url === "string" && Array.isArray(msg.labels)) {
          hub.watch(port, msg.url, msg.labels.filter(function (l) { return typeof l === "string"; }));
        } else if (msg.type === "leave") {
          hub.leave(port);
        }
      };
      port.start();
    };
    return;
  }

  // ------------------------------------------------------------ in a page

  var script = document.currentScript && document.currentScript.src;

  // How this page reaches a hub for the stream at `url`, best first:
  // - the SharedWorker, shared by every tab of this origin;
  // - without one (Chrome on Android, or embedded in another site's
  //   page), the tabs of this origin elect a leader that holds the stream
  //   and relays it over a BroadcastChannel;
  // - else a stream of this page's own.
  function connect(url, deliver) {
    var sameOrigin = new URL(url).origin === location.origin;
    if (sameOrigin && global.SharedWorker && script && new URL(script).origin === location.origin) {
      try {
        var port = new SharedWorker(script, { name: "weight-converter" }).port;
        port.onmessage = function (e) { deliver(e.data || {}); };
        port.start();
        return {
          watch: function (labels) { port.postMessage({ type: "watch", url: url, labels: labels }); },
          leave: function () { port.postMessage({ type: "leave" }); },
        };
      } catch (err) { /* fall through */ }
    }
    if (global.BroadcastChannel) return viaLeader(url, deliver);
    var own = new Hub(function (_, message) { deliver(message); });
    return {
      watch: function (labels) { own.watch("page", url, labels); },
      leave: function () { own.leave("page"); },
    };
  }

  function viaLeader(url, deliver) {
    var name = "weight-converter " + url;
    var me = Math.random().toString(36).slice(2) + Date.now().toString(36);
    var channel = new BroadcastChannel(name);
    var hub = null; // set while this tab leads
    var labels = [];
    var announce = function () {
      if (hub) hub.watch(me, url, labels);
      else channel.postMessage({ type: "watch", client: me, labels: labels });
    };
    var election = (global.navigator.locks ? byLock : byMessage)(name, me, channel, {
      lead: function () {
        hub = new Hub(function (client, message) {
          if (client === me) deliver(message);
          else channel.postMessage(Object.assign({ to: client }, message));
        });
        hub.watch(me, url, labels);
        channel.postMessage({ type: "roll-call" });
      },
      follow: function () {
        if (hub) hub.close();
        hub = null;
        announce();
      },
    });
    channel.onmessage = function (e) {
      var msg = e.data || {};
      if (msg.to) {
        if (msg.to === me) deliver(msg);
      } else if (election.heard(msg)) {
        // the election's own
      } else if (msg.type === "roll-call") {
        announce();
      } else if (hub && msg.type === "watch" && Array.isArray(msg.labels)) {
        hub.watch(msg.client, url, msg.labels);
      } else if (hub && msg.type === "leave") {
        hub.leave(msg.client);
      }
    };
    return {
      watch: function (next) { labels = next; announce(); election.wake(); },
      leave: function () {
        labels = [];
        if (hub) hub.leave(me);
        else channel.postMessage({ type: "leave", client: me });
        election.resign();
      },
    };
  }

  // Leads while holding the Web Lock `name`: the browser gives it to the
  // next tab in line when this page goes, and every tab tells it what it
  // watches.
  function byLock(name, me, channel, on) {
    global.navigator.locks.request(name, function () {
      on.lead();
      return new Promise(function () {});
    });
    var none = function () { return false; };
    return { heard: none, wake: none, resign: none };
  }

  // Without Web Locks (a page over plain HTTP from another machine is not
  // a secure context), by message. A leader answers every "who-leads" at
  // once, which a tab in the background does too, however slowly its
  // timers run. A tab that hears no answer claims the lead for a higher
  // term. Of two leaders, the higher term wins, then the smaller id.
  function byMessage(name, me, channel, on) {
    var term = 0;
    var leader = null; // id, or null while unknown
    var answered = 0; // when a leader last said so
    var asking = null;
    var leading = function () { return leader === me; };
    var say = function () { channel.postMessage({ type: "leads", id: me, term: term }); };
    var ask = function () {
      if (asking || leading()) return;
      var asked = Date.now();
      channel.postMessage({ type: "who-leads" });
      // Jittered, so tabs that lost their leader together do not all claim.
      asking = setTimeout(function () {
        asking = null;
        if (leading() || answered >= asked) return;
        term += 1;
        leader = me;
        on.lead();
        say();
      }, 250 + Math.random() * 250);
    };
    var checks = setInterval(ask, 2000);
    ask();
    return {
      heard: function (msg) {
        if (msg.type === "who-leads") {
          if (leading()) say();
        } else if (msg.type === "leads" && msg.id !== me) {
          var wins = msg.term > term ||
            (msg.term === term && (leader === null || msg.id === leader || msg.id < leader));
          if (!wins) {
            if (leading()) say(); // so the other steps down
            return true;
          }
          var was = leader;
          term = msg.term;
          leader = msg.id;
          answered = Date.now();
          // Steps down if it led; tells a new leader what this tab watches.
          if (was !== msg.id) on.follow();
        } else if (msg.type === "resigns" && msg.id === leader) {
          leader = null;
          ask();
        } else {
          return false;
        }
        return true;
      },
      wake: function () {
        if (!checks) checks = setInterval(ask, 2000);
        if (leader === null) ask();
      },
      resign: function () {
        clearInterval(checks);
        checks = null;
        if (!leading()) return;
        leader = null;
        on.follow();
        channel.postMessage({ type: "resigns", id: me });
      },
    };
  }

  // --------------------------------------------------------- live views

  // A live view: an element with data-wc-watch (the session, as the
  // stream names it) and data-wc-events (the stream's URL).
  var views = function () { return Array.prototype.slice.call(document.querySelectorAll("[data-wc-watch]")); };
  var eventsOf = function (view) { return new URL(view.getAttribute("data-wc-events"), location.href).href; };

  // null for an element that goes with no particular state, such as the
  // message that the session store could not be reached.
  var version = function (el) {
    var v = el.getAttribute("data-version");
    return v === null ? null : Number(v);
  };

  var syncAttributes = function (target, source, names) {
    names.forEach(function (name) {
      if (source.hasAttribute(name)) target.setAttribute(name, source.getAttribute(name));
      else target.removeAttribute(name);
    });
  };

  // Applies an update (a response to this view's change, or a stream
  // event) to one view, part by part, never going back in time: a stream
  // event only if it is newer than what the view shows, a response also
  // if it is as new. So the echo of this view's own change, which comes
  // after its answer, changes nothing, and one that comes first, or
  // without an answer (a change a stalled store applied late), shows.
  // Fields are updated in place, so focus and caret stay; one the user
  // is typing in keeps what is typed.
  // Returns whether it showed a change that another view made: the dump
  // of a stream event names the view that made it (data-origin).
  function apply(view, html, fromStream) {
    var template = document.createElement("template");
    template.innerHTML = html;
    var changed = false;
    Array.prototype.forEach.call(template.content.querySelectorAll("[data-part]"), function (part) {
      var target = view.querySelector('[data-part="' + part.getAttribute("data-part") + '"]');
      if (!target) return;
      var incoming = version(part), shown = version(target);
      if (incoming !== null && shown !== null && (incoming < shown || (fromStream && incoming === shown))) return;
      if (target instanceof HTMLInputElement && part instanceof HTMLInputElement) {
        var typing = target === document.activeElement && target.value !== target.defaultValue;
        if (typing && fromStream) return;
        changed = changed || target.value !== part.defaultValue;
        target.defaultValue = part.defaultValue;
        target.value = part.defaultValue;
        hint(target);
        syncAttributes(target, part, ["data-version", "aria-invalid", "aria-valuenow", "aria-valuetext"]);
      } else {
        changed = changed || target.textContent !== part.textContent;
        target.replaceChildren.apply(target, Array.prototype.slice.call(part.childNodes));
        syncAttributes(target, part, ["data-version"]);
      }
    });
    var origin = template.content.querySelector("[data-origin]");
    var mine = origin && origin.getAttribute("data-origin") === view.getAttribute("data-view");
    return changed && !mine;
  }

  // Says, once and politely, what the view's fields show now, in the
  // page's own words: its labels ("Pounds: 10.00, Kilograms: 4.54").
  function announce(view) {
    var region = view.querySelector("[data-wc-announce]");
    if (!region) return;
    var said = Array.prototype.map.call(view.querySelectorAll("input[data-part], output[data-part]"), function (field) {
      var label = field.id && view.querySelector('label[for="' + field.id + '"]');
      var value = field instanceof HTMLInputElement ? field.value : field.textContent;
      return (label ? label.textContent + " " : "") + value;
    });
    if (said.length === 0) return;
    region.textContent = region.getAttribute("data-prefix") + " " + said.join(", ");
  }

  // "Press Enter to apply" under a field while it holds text not yet sent.
  function hint(input) {
    var box = input.form && input.form.querySelector("[data-hint]");
    if (!box) return;
    var dirty = input.value !== input.defaultValue;
    var text = dirty ? box.getAttribute("data-hint") : "";
    if (box.textContent !== text) box.textContent = text;
  }

  // The view's status line, and data-wc-live: "true", "false" or "gone".
  function setStatus(view, live) {
    if (view.getAttribute("data-wc-live") === live) return;
    view.setAttribute("data-wc-live", live);
    var status = view.querySelector("[data-wc-status]");
    if (!status) return;
    if (live === "true") {
      status.replaceChildren();
    } else if (live === "false") {
      status.textContent = status.getAttribute("data-reconnecting");
    } else {
      var link = document.createElement("a");
      link.href = status.getAttribute("data-restart-href");
      link.textContent = status.getAttribute("data-restart");
      status.replaceChildren(status.getAttribute("data-gone") + " ", link);
    }
  }

  var hubs = new Map(); // stream URL → {hub connection, watched: "labels|count"}

  function deliver(url, msg) {
    if (msg.type === "roll-call") {
      // Say again what this page watches.
      var known = hubs.get(url);
      if (known) known.watched = "";
      rescan();
      return;
    }
    views().forEach(function (view) {
      if (view.getAttribute("data-wc-watch") !== msg.label || eventsOf(view) !== url) return;
      if (view.getAttribute("data-wc-live") === "gone") return;
      if (msg.type === "state") {
        if (apply(view, msg.html, true)) announce(view);
        setStatus(view, "true");
      } else if (msg.type === "down") {
        setStatus(view, "false");
      } else if (msg.type === "gone") {
        setStatus(view, "gone");
      }
    });
  }

  // Tells each hub what this page's views watch now. A view added for a
  // session already watched (a second fragment) is told again too, so the
  // hub catches it up.
  function rescan() {
    var byUrl = new Map();
    views().forEach(function (view) {
      var url = eventsOf(view);
      var entry = byUrl.get(url) || { labels: new Set(), count: 0 };
      entry.labels.add(view.getAttribute("data-wc-watch"));
      entry.count += 1;
      byUrl.set(url, entry);
    });
    hubs.forEach(function (known, url) {
      if (!byUrl.has(url) && known.watched !== "") {
        known.hub.leave();
        known.watched = "";
      }
    });
    byUrl.forEach(function (entry, url) {
      var known = hubs.get(url);
      if (!known) {
        known = { hub: connect(url, function (msg) { deliver(url, msg); }), watched: "" };
        hubs.set(url, known);
      }
      var labels = Array.from(entry.labels).sort();
      var watched = labels.join(" ") + "|" + entry.count;
      if (watched === known.watched) return;
      known.watched = watched;
      known.hub.watch(labels);
    });
  }

  var pending = false;
  var later = function () {
    if (pending) return;
    pending = true;
    setTimeout(function () { pending = false; rescan(); }, 0);
  };
  // Whether a mutation added or removed a view (not just its content).
  var movesViews = function (records) {
    var isOrHasView = function (node) {
      return node.nodeType === 1 && (node.hasAttribute("data-wc-watch") || node.querySelector("[data-wc-watch]"));
    };
    return records.some(function (record) {
      return Array.prototype.some.call(record.addedNodes, isOrHasView) ||
        Array.prototype.some.call(record.removedNodes, isOrHasView);
    });
  };
  var start = function () {
    rescan();
    // Fragments come and go (htmx loads them into a host page).
    new MutationObserver(function (records) { if (movesViews(records)) later(); })
      .observe(document.documentElement, { childList: true, subtree: true });
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
  // A page put in the back/forward cache hears nothing while there: once
  // restored, it is not live until its views have caught up.
  global.addEventListener("pagehide", function () {
    hubs.forEach(function (known) { known.hub.leave(); known.watched = ""; });
    views().forEach(function (view) { setStatus(view, "false"); });
  });
  global.addEventListener("pageshow", function (e) { if (e.persisted) rescan(); });

  // ------------------------------------------------------ the widgets

  // Only our own forms: on another site's page that embeds fragments,
  // the host's forms are none of this file's business.
  var ours = function (form) {
    return form instanceof HTMLFormElement && !!form.closest("[data-wc-watch]");
  };

  // ArrowUp / ArrowDown step like + / −, as in a number input.
  document.addEventListener("keydown", function (e) {
    if (e.key !== "ArrowUp" && e.key !== "ArrowDown") return;
    var input = e.target;
    if (!(input instanceof HTMLInputElement) || !ours(input.form)) return;
    var button = input.form.querySelector('button[name="step"][value="' + (e.key === "ArrowUp" ? "up" : "down") + '"]');
    if (!button) return;
    e.preventDefault();
    input.form.requestSubmit(button);
  });

  // htmx sends the name/value of the last *clicked* button, not of the
  // submit event's submitter, so a step started by a key press (above)
  // would post as a plain "set". Send the submitter explicitly.
  document.addEventListener("htmx:configRequest", function (e) {
    if (!ours(e.detail.elt)) return;
    var trigger = e.detail.triggeringEvent;
    var submitter = trigger && trigger.submitter;
    if (submitter && submitter.name) e.detail.parameters[submitter.name] = submitter.value;
  });

  // Enter in a field fires "change" and then "submit": one commit, two
  // triggers. Send the first and drop a plain submit that follows it at
  // once with nothing typed in between. By typing, not by value: what is
  // sent may be letters, or digits of another script. Dropped before htmx
  // sees it (capture, on the document), so htmx queues nothing behind the
  // change's request and has nothing to take off the queue when its
  // answer comes.
  var lastCommit = new WeakMap(); // form → {at, typedSince}
  document.addEventListener("input", function (e) {
    var input = e.target;
    if (!(input instanceof HTMLInputElement) || !ours(input.form)) return;
    var last = lastCommit.get(input.form);
    if (last) last.typedSince = true;
    hint(input);
  });
  document.addEventListener("htmx:configRequest", function (e) {
    var form = e.detail.elt;
    if (ours(form) && !e.detail.parameters.step) lastCommit.set(form, { at: performance.now(), typedSince: false });
  });
  document.addEventListener("submit", function (e) {
    var form = e.target;
    if (!ours(form) || (e.submitter && e.submitter.name === "step")) return;
    var last = lastCommit.get(form);
    if (last && !last.typedSince && performance.now() - last.at < 500) {
      e.preventDefault();
      e.stopPropagation();
    }
  }, true);

  // Every answer to a change (the other field and the dump; a refusal;
  // an error's message line) is applied to the view that sent it, part by
  // part, here; htmx's own swap would only parse it once more.
  document.addEventListener("htmx:beforeSwap", function (e) {
    if (ours(e.detail.elt)) e.detail.shouldSwap = false;
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    var xhr = e.detail.xhr;
    if (!ours(form) || !xhr || !xhr.responseText) return;
    apply(form.closest("[data-wc-watch]"), xhr.responseText, false);
  });

  // Once a commit is accepted, show it as Streamlit does: two decimals.
  // Only if the field still holds what was sent, so later typing is kept.
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    // Not after a refusal (422, which htmx is told is no error).
    if (!e.detail.xhr || e.detail.xhr.status !== 200 || !ours(form)) return;
    var params = e.detail.requestConfig && e.detail.requestConfig.parameters;
    if (!params || params.step) return;
    Array.prototype.forEach.call(form.querySelectorAll("input[inputmode=decimal]"), function (input) {
      var sent = params[input.name];
      if (typeof sent !== "string" || input.value !== sent) return;
      var value = sent.trim() === "" ? 0 : Number(asciiDigits(sent));
      if (Number.isFinite(value) && Math.abs(value) < 1e21) {
        input.value = input.defaultValue = (value + 0).toFixed(2);
        input.setAttribute("aria-valuenow", input.value);
        input.removeAttribute("aria-valuetext");
        input.removeAttribute("aria-invalid");
      }
    });
  });

  // The server reads any script's decimal digits (२.५ is 2.5). A digit's
  // value is its place in its run of ten, and every run starts at zero.
  var asciiDigits = function (text) {
    return text.replace(/\p{Nd}/gu, function (digit) {
      var code = digit.codePointAt(0), zero = code;
      while (/\p{Nd}/u.test(String.fromCodePoint(zero - 1))) zero -= 1;
      return String((code - zero) % 10);
    });
  };

  // A committed field has no unsaved text any more. Where htmx posts the
  // commit, the page is marked so when the answer comes, in one frame with
  // the answer: marked now, the browser would render a frame first, and
  // the answer would wait for it.
  var committing = new WeakMap(); // input → the text it committed
  document.addEventListener("change", function (e) {
    var input = e.target;
    if (!(input instanceof HTMLInputElement) || !ours(input.form)) return;
    if (input.form.hasAttribute("hx-post")) {
      committing.set(input, input.value);
      return;
    }
    input.defaultValue = input.value;
    hint(input);
  });
  document.addEventListener("htmx:afterRequest", function (e) {
    var form = e.detail.elt;
    if (!ours(form)) return;
    Array.prototype.forEach.call(form.querySelectorAll("input[inputmode=decimal]"), function (input) {
      if (!committing.has(input)) return;
      if (input.value === committing.get(input)) input.defaultValue = input.value;
      committing.delete(input);
      hint(input);
    });
  });
})(self);
