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
        let dump = html::element(&reply.body, "pre", "wc-state").expect("the dump");
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
/// so none is sent (the stream worker, whose own policy governs it, is
/// checked in `http_assets`).
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
/// field's message line, out of band, and no input (the field keeps what
/// was typed); a plain form gets [`assert_error_page`].
pub fn assert_widget_error(reply: &Reply, htmx: bool, key: &str, what: &str) {
    if !htmx {
        return assert_error_page(reply, what);
    }
    assert!(reply.content_type().starts_with("text/html"), "{what}: content-type {}", reply.content_type());
    let id = format!("wc-{key}-msg");
    let message =
        html::element(&reply.body, "p", &id).unwrap_or_else(|| panic!("{what}: no #{id} in {}", reply.body));
    assert_eq!((message.attr("hx-swap-oob"), message.attr("role")), (Some("true"), Some("alert")), "{what}");
    assert!(!html::text(&reply.body, &message).trim().is_empty(), "{what}: an empty message");
    assert!(!reply.body.contains("<input"), "{what}: the field would be replaced: {}", reply.body);
    assert_security_headers(&reply.headers, what);
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
