// A SharedWorker that holds one event stream per session for every tab of
// this origin. Browsers allow 6 HTTP/1.1 connections per host and each
// EventSource holds one, so without it the 7th tab would hang.
//
// Tabs talk to it with messages:
//   tab → worker: {type: "open", url} | {type: "close"}
//   worker → tab: {type: "open"} | {type: "error", readyState}
//                 | {type: "message", event, data, lastEventId}
"use strict";

var streams = new Map(); // url → {source, ports: Set, last: Map(event → message)}

function broadcast(stream, message) {
  stream.ports.forEach(function (port) { port.postMessage(message); });
}

function openStream(url) {
  var stream = { source: new EventSource(url), ports: new Set(), last: new Map() };
  stream.source.onopen = function () { broadcast(stream, { type: "open" }); };
  stream.source.onerror = function () {
    broadcast(stream, { type: "error", readyState: stream.source.readyState });
    if (stream.source.readyState === EventSource.CLOSED) streams.delete(url);
  };
  stream.source.addEventListener("state", function (e) {
    var message = { type: "message", event: "state", data: e.data, lastEventId: e.lastEventId };
    stream.last.set("state", message);
    broadcast(stream, message);
  });
  streams.set(url, stream);
  return stream;
}

function leave(port) {
  streams.forEach(function (stream, url) {
    if (stream.ports.delete(port) && stream.ports.size === 0) {
      stream.source.close();
      streams.delete(url);
    }
  });
}

self.onconnect = function (connect) {
  var port = connect.ports[0];
  port.onmessage = function (e) {
    var msg = e.data || {};
    if (msg.type === "open" && typeof msg.url === "string") {
      leave(port);
      var stream = streams.get(msg.url) || openStream(msg.url);
      stream.ports.add(port);
      if (stream.source.readyState === EventSource.OPEN) {
        port.postMessage({ type: "open" });
        // A tab that joins late still starts from the newest state.
        stream.last.forEach(function (message) { port.postMessage(message); });
      }
    } else if (msg.type === "close") {
      leave(port);
    }
  };
  port.start();
};
