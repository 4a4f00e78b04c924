//! Requests and checks the HTTP tests share: form posts, the session's
//! version, and what every response and every error page must carry.

use reqwest::header::HeaderMap;

use super::TestApp;
use super::html;

/// The definition of the international pound, in kilograms.
pub const LB_IN_KG: f64 = 0.45359237;

/// The widget keys, in page order.
pub const KEYS: [&str; 2] = ["lbs", "kg"];

/// `application/x-www-form-urlencoded` text for these pairs, encoded as a
/// browser would (so `+` travels as `%2B` and a space as `+`).
pub fn form_body(pairs: &[(&str, &str)]) -> String {
    form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

/// A response, read to the end.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: String,
}

impl Reply {
    pub async fn read(response: reqwest::Response) -> Self {
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("response body");
        Self { status, headers, body }
    }

    /// A header's value; panics, naming the header, when it is missing.
    pub fn header(&self, name: &str) -> &str {
        header(&self.headers, name)
    }

    pub fn content_type(&self) -> &str {
        self.header("content-type")
    }
}

/// A header's value; panics, naming the header, when it is missing.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name} header in {headers:?}"))
        .to_str()
        .expect("visible ASCII header")
}

impl TestApp {
    /// `GET path`, read to the end.
    pub async fn get(&self, path: &str) -> Reply {
        Reply::read(self.client.get(self.url(path)).send().await.expect("GET")).await
    }

    /// `GET path` with extra request headers.
    pub async fn get_with(&self, path: &str, headers: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.client.get(self.url(path));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        request.send().await.expect("GET")
    }

    /// Posts these pairs, form-encoded, to `key`'s widget.
    pub async fn post_form(&self, sid: &str, key: &str, pairs: &[(&str, &str)], htmx: bool) -> Reply {
        Reply::read(self.post_widget(sid, key, &form_body(pairs), htmx).await).await
    }

    /// Posts a raw body with the given content type (none if `None`).
    pub async fn post_raw(
        &self,
        path: &str,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
        htmx: bool,
    ) -> Reply {
        let mut request = self.client.post(self.url(path)).body(body);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        if htmx {
            request = request.header("HX-Request", "true");
        }
        Reply::read(request.send().await.expect("POST")).await
    }

    /// Commits `key=value` as a plain form would, and checks it was taken.
    pub async fn commit(&self, sid: &str, key: &str, value: &str) {
        let reply = self.post_form(sid, key, &[(key, value)], false).await;
        assert_eq!(reply.status, 303, "committing {key}={value:?}: {}", reply.body);
    }

    /// `GET /s/{sid}`, which must be the page.
    pub async fn page(&self, sid: &str) -> String {
        let reply = self.get(&format!("/s/{sid}")).await;
        assert_eq!(reply.status, 200, "GET /s/{{sid}}: {}", reply.body);
        reply.body
    }

    /// The session's version, as the dump fragment states it.
    pub async fn version(&self, sid: &str) -> u64 {
        let reply = self.get(&format!("/s/{sid}/fragments/state")).await;
        assert_eq!(reply.status, 200);
        let dump = html::part(&reply.body, "pre", "state").expect("the dump");
        dump.attr("data-version").expect("data-version").parse().expect("numeric version")
    }

    /// A new session and its read-only token.
    pub async fn session_and_token(&self) -> (String, String) {
        let sid = self.new_session().await;
        let token = read_token(&self.page(&sid).await);
        (sid, token)
    }

    /// The state as text and the version, for before/after comparisons.
    pub async fn snapshot(&self, sid: &str) -> (String, u64) {
        (self.state_json(sid).await, self.version(sid).await)
    }
}

/// The raw text of `key`'s number in `{"lbs":…,"kg":…}`, for exact
/// comparisons (serde_json's default float parsing is not exact).
pub fn raw_number<'a>(json: &'a str, key: &str) -> &'a str {
    let marker = format!("\"{key}\":");
    let start = json.find(&marker).unwrap_or_else(|| panic!("no {key} in {json}")) + marker.len();
    let len = json[start..].find([',', '}']).unwrap_or_else(|| panic!("unterminated {json}"));
    json[start..start + len].trim()
}

/// `key`'s value in state.json, parsed exactly.
pub fn number(json: &str, key: &str) -> f64 {
    let raw = raw_number(json, key);
    raw.parse().unwrap_or_else(|_| panic!("{key} is not a number in {json}"))
}

/// Checks a state.json body: a JSON object of exactly `lbs` then `kg`,
/// both finite numbers. Returns `(lbs, kg)`.
pub fn check_state_json(json: &str) -> Result<(f64, f64), String> {
    let value: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("invalid JSON {json}: {e}"))?;
    let object = value.as_object().ok_or_else(|| format!("not an object: {json}"))?;
    if object.len() != 2 || !object.contains_key("lbs") || !object.contains_key("kg") {
        return Err(format!("keys are not lbs and kg: {json}"));
    }
    let (lbs_at, kg_at) = (json.find("\"lbs\""), json.find("\"kg\""));
    if lbs_at >= kg_at {
        return Err(format!("keys not in widget order: {json}"));
    }
    let mut pair = [0.0; 2];
    for (slot, key) in pair.iter_mut().zip(KEYS) {
        if !object[key].is_number() {
            return Err(format!("{key} is not a number: {json}"));
        }
        let value: f64 = raw_number(json, key).parse().map_err(|_| format!("{key} unreadable: {json}"))?;
        if !value.is_finite() {
            return Err(format!("{key} is not finite: {json}"));
        }
        *slot = value;
    }
    Ok((pair[0], pair[1]))
}

/// `Content-Security-Policy`, `Referrer-Policy` and `X-Content-Type-Options`
/// as the issue requires them, on any response.
pub fn assert_security_headers(headers: &HeaderMap, what: &str) {
    let csp = headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{what}: no Content-Security-Policy"))
        .to_str()
        .expect("ASCII CSP");
    let directives: Vec<(&str, Vec<&str>)> = csp
        .split(';')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            let mut words = d.split_ascii_whitespace();
            (words.next().unwrap_or(""), words.collect())
        })
        .collect();
    let sources = |name: &str| directives.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, s)| s);
    let scripts = sources("script-src")
        .or_else(|| sources("default-src"))
        .unwrap_or_else(|| panic!("{what}: CSP does not restrict scripts: {csp}"));
    for bad in ["'unsafe-inline'", "'unsafe-eval'", "*", "data:", "http:", "https:"] {
        assert!(
            !scripts.iter().any(|s| s.eq_ignore_ascii_case(bad)),
            "{what}: script-src allows {bad}: {csp}"
        );
    }
    assert!(!csp.to_ascii_lowercase().contains("'unsafe-eval'"), "{what}: CSP allows eval: {csp}");
    assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff", "{what}");
}

/// Everything that is not a document (scripts, style sheets, JSON,
/// redirects): no referrer and no sniffing. A CSP there would be ignored,
/// so none is sent (`app.js`, which is also the stream's shared worker and
/// runs under its own policy there, is checked in `http_assets`).
pub fn assert_subresource_headers(headers: &HeaderMap, what: &str) {
    assert_eq!(header(headers, "referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header(headers, "x-content-type-options"), "nosniff", "{what}");
}

/// `Cache-Control: no-store`.
pub fn assert_no_store(headers: &HeaderMap, what: &str) {
    let cache = header(headers, "cache-control");
    assert!(
        cache.split(',').any(|d| d.trim().eq_ignore_ascii_case("no-store")),
        "{what}: Cache-Control {cache}"
    );
}

/// What an error looks like to whoever posted a widget: htmx gets the
/// field's message line alone, as an update, and no input (the field
/// keeps what was typed); a plain form gets [`assert_error_page`].
pub fn assert_widget_error(reply: &Reply, htmx: bool, key: &str, what: &str) {
    if !htmx {
        return assert_error_page(reply, what);
    }
    assert!(reply.content_type().starts_with("text/html"), "{what}: content-type {}", reply.content_type());
    let part = format!("{key}-msg");
    assert_update(&reply.body, &[("p", &part)], what);
    let message = html::part(&reply.body, "p", &part).expect("checked above");
    assert_eq!(message.attr("role"), Some("alert"), "{what}: {message:?}");
    assert!(message.attrs["class"].split(' ').any(|c| c == "message"), "{what}: {message:?}");
    // It goes with no state, so a view shows it whatever version it is at.
    assert_eq!(message.attr("data-version"), None, "{what}: {message:?}");
    assert!(!html::text(&reply.body, &message).trim().is_empty(), "{what}: an empty message");
    assert!(!reply.body.contains("<input"), "{what}: the field would be replaced: {}", reply.body);
    assert_security_headers(&reply.headers, what);
}

/// `(element, data-part)` of every element that has a `data-part`, in
/// document order.
pub fn part_names(markup: &str) -> Vec<(String, String)> {
    html::all_parts(markup).into_iter().map(|t| (t.name.clone(), t.attrs["data-part"].clone())).collect()
}

/// An update (the answer to an htmx change, a stream event's HTML): just
/// these parts, in this order, for `app.js` to apply by name to every
/// view of the session. It names no element of any view: no `id`, no
/// `for` or `aria-describedby` pointing at one, nothing out of band.
pub fn assert_update(markup: &str, want: &[(&str, &str)], what: &str) {
    let want: Vec<(String, String)> = want.iter().map(|(n, p)| ((*n).to_owned(), (*p).to_owned())).collect();
    assert_eq!(part_names(markup), want, "{what}: the parts of {markup}");
    assert!(!markup.contains("<html") && !markup.contains("<main"), "{what}: not an update: {markup}");
    for tag in html::start_tags(markup) {
        for attr in ["id", "for", "aria-describedby", "hx-swap-oob", "sse-swap"] {
            assert!(!tag.has(attr), "{what}: an update with {attr}: {tag:?} in {markup}");
        }
    }
}

/// A view id, as the markup carries it: 22 base64url characters.
pub fn assert_view_id(view: &str, what: &str) {
    assert_eq!(view.len(), 22, "{what}: view id {view:?}");
    assert!(view.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{what}: {view:?}");
}

/// The ids of a whole view's fields (`wc-{view}-lbs`, …), checked the way
/// assistive technology uses them: each label's `for` is its field's id
/// and, where the field can be typed in (`input`), its `aria-describedby`
/// is its message line's id. No id appears twice in `markup`. Returns
/// every id, fields and messages, in key order.
pub fn assert_view_ids(markup: &str, field: &str, what: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let labels = html::tags(markup, "label");
    for key in KEYS {
        let tag =
            html::part(markup, field, key).unwrap_or_else(|| panic!("{what}: no {field} {key} in {markup}"));
        let id = tag.id().to_owned();
        let view = id
            .strip_prefix("wc-")
            .and_then(|rest| rest.strip_suffix(&format!("-{key}")))
            .unwrap_or_else(|| panic!("{what}: {field} {key} has id {id:?}, not wc-{{view}}-{key}"));
        assert_view_id(view, what);
        let label = labels.iter().filter(|l| l.attr("for") == Some(id.as_str())).count();
        assert_eq!(label, 1, "{what}: {label} labels for #{id} in {markup}");
        ids.push(id.clone());
        if field == "input" {
            let part = format!("{key}-msg");
            let message = html::part(markup, "p", &part)
                .unwrap_or_else(|| panic!("{what}: no {part} line in {markup}"));
            assert_eq!(message.id(), format!("{id}-msg"), "{what}: the {key} message's id");
            // Described by its message line, then its "Press Enter to apply" hint.
            let hint = html::by_id(markup, &format!("{id}-hint"))
                .unwrap_or_else(|| panic!("{what}: no hint for {key} in {markup}"));
            assert!(hint.has("data-hint"), "{what}: {hint:?}");
            let described_by = format!("{} {}", message.id(), hint.id());
            assert_eq!(
                tag.attr("aria-describedby"),
                Some(described_by.as_str()),
                "{what}: {key} is not described by its message and hint"
            );
            ids.push(message.id().to_owned());
            ids.push(hint.id().to_owned());
        } else {
            assert!(!tag.has("aria-describedby"), "{what}: {tag:?}");
        }
    }
    let all: Vec<String> =
        html::start_tags(markup).iter().map(|t| t.id().to_owned()).filter(|id| !id.is_empty()).collect();
    let mut unique = all.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), all.len(), "{what}: an id used twice: {all:?}");
    ids
}

/// The root of a live view: `<main class="app">` on our pages, `<div
/// class="wc-embed">` in fragments. Checks what `app.js` reads from it
/// (`data-wc-watch`, `data-wc-events`) and its status line, empty while
/// live; returns it. `watch` is `s:{sid}` or `v:{token}`, `events` the
/// stream's URL.
pub fn assert_live_root(markup: &str, name: &str, watch: &str, events: &str, what: &str) -> html::Tag {
    let roots: Vec<html::Tag> =
        html::start_tags(markup).into_iter().filter(|t| t.has("data-wc-watch")).collect();
    assert_eq!(roots.len(), 1, "{what}: one live view: {roots:?}");
    let root = roots.into_iter().next().expect("one root");
    let class = if name == "main" { "app" } else { "wc-embed" };
    assert_eq!((root.name.as_str(), root.attr("class")), (name, Some(class)), "{what}: {root:?}");
    assert_eq!(root.attr("data-wc-watch"), Some(watch), "{what}: {root:?}");
    assert_eq!(root.attr("data-wc-events"), Some(events), "{what}: {root:?}");
    let status: Vec<html::Tag> =
        html::start_tags(markup).into_iter().filter(|t| t.has("data-wc-status")).collect();
    assert_eq!(status.len(), 1, "{what}: one status line: {status:?}");
    let status = &status[0];
    assert!(status.start > root.start, "{what}: the status line is outside the view");
    assert_eq!(
        (status.name.as_str(), status.attr("class"), status.attr("role")),
        ("p", Some("wc-status"), Some("status")),
        "{what}: {status:?}"
    );
    // A page's stream opens with app.js, which every page loads; a
    // fragment says it is not live until app.js connects it, since a host
    // page without app.js (an older snippet) never updates it.
    let initially = if root.name == "main" { "" } else { "Connecting…" };
    assert_eq!(html::text(markup, status), initially, "{what}: the status line before app.js runs");
    for gone in ["sse-connect", "sse-swap", "hx-ext", "data-stream-worker", "hx-swap-oob"] {
        assert!(!markup.contains(gone), "{what}: {gone} in {markup}");
    }
    root
}

/// Our HTML error page: a whole document with a way back to a new
/// session, never a framework's plain-text default.
pub fn assert_error_page(reply: &Reply, what: &str) {
    assert!(reply.content_type().starts_with("text/html"), "{what}: content-type {}", reply.content_type());
    assert!(reply.body.contains("<html"), "{what}: not a page: {:?}", reply.body);
    assert!(
        html::tags(&reply.body, "a").iter().any(|a| a.attr("href") == Some("/")),
        "{what}: no link to / in {}",
        reply.body
    );
    assert_security_headers(&reply.headers, what);
}

/// The read-only token a page links (`<a href="/v/{token}">`).
pub fn read_token(page: &str) -> String {
    let links: Vec<String> = html::tags(page, "a")
        .into_iter()
        .filter_map(|a| a.attr("href")?.strip_prefix("/v/").map(str::to_owned))
        .collect();
    assert_eq!(links.len(), 1, "the page links exactly one read-only view: {links:?}");
    links.into_iter().next().expect("one link")
}
