//! Hindi and English over HTTP (issue 13): which language a request gets,
//! the switch and its cookie, the headers that say so, every message in
//! both languages, and digits of other scripts.

use crate::common;

use common::checks::Reply;
use common::{TestApp, spawn_app, spawn_app_with};
use weight_converter::i18n::{Lang, Texts};
use weight_converter::session::{Key, Refusal};

const EN: &Texts = Lang::English.texts();
const HI: &Texts = Lang::Hindi.texts();

/// A request as a browser whose language list is `accept` would send it.
fn request(app: &TestApp, method: &str, path: &str, accept: &str) -> reqwest::RequestBuilder {
    let method = reqwest::Method::from_bytes(method.as_bytes()).expect("a method");
    app.client.request(method, app.url(path)).header("accept-language", accept)
}

async fn get_in(app: &TestApp, path: &str, accept: &str) -> Reply {
    Reply::read(app.get_with(path, &[("accept-language", accept)]).await).await
}

async fn post_in(app: &TestApp, path: &str, body: &str, htmx: bool, accept: &str) -> Reply {
    let mut post = request(app, "POST", path, accept)
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body.to_owned());
    if htmx {
        post = post.header("hx-request", "true");
    }
    Reply::read(post.send().await.expect("POST")).await
}

/// `GET path` from a browser whose cookie says Hindi and whose header says English.
async fn with_cookie(app: &TestApp, path: &str) -> Reply {
    Reply::read(app.get_with(path, &[("accept-language", "en"), ("cookie", "lang=hi")]).await).await
}

fn header<'a>(reply: &'a Reply, name: &str) -> &'a str {
    reply.headers.get(name).map_or("", |v| v.to_str().expect("an ASCII header"))
}

/// The page is in `t`'s language, and says so everywhere it should.
fn assert_in(reply: &Reply, t: &Texts, what: &str) {
    assert!(reply.body.contains(&format!("<html lang=\"{}\">", t.tag)), "{what}: <html lang>");
    assert_eq!(header(reply, "content-language"), t.tag, "{what}: Content-Language");
    let vary: Vec<String> =
        reply.headers.get_all("vary").iter().map(|v| v.to_str().unwrap_or("").to_ascii_lowercase()).collect();
    let vary = vary.join(", ");
    assert!(vary.contains("accept-language") && vary.contains("cookie"), "{what}: Vary is {vary:?}");
    // The switch: a link to this page in every other language, by its own name.
    for other in [EN, HI].into_iter().filter(|o| o.tag != t.tag) {
        let link =
            format!("<a href=\"?lang={0}\" lang=\"{0}\" hreflang=\"{0}\">{1}</a>", other.tag, other.name);
        assert!(reply.body.contains(&link), "{what}: no switch to {}: {}", other.tag, reply.body);
    }
}

#[tokio::test]
async fn the_page_follows_accept_language_hindi_for_hi_english_otherwise() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let page = format!("/s/{sid}");
    for (accept, t) in [
        ("hi", HI),
        ("hi-IN,hi;q=0.9,en;q=0.8", HI),
        ("en-GB,hi;q=0.5", EN),
        ("fr,hi;q=0.3", HI),
        ("de", EN),
        ("", EN),
    ] {
        let reply = get_in(&app, &page, accept).await;
        assert_eq!(reply.status, 200, "{accept}");
        assert_in(&reply, t, accept);
        for words in [t.input, t.output, t.lbs.label, t.kg.label, t.state_object] {
            assert!(reply.body.contains(words), "{accept}: no {words:?}");
        }
        assert!(reply.body.contains("<title>st.session_state</title>"), "{accept}: the title is code");
        assert!(reply.body.contains("<h1>st.session_state</h1>"), "{accept}");
        assert_eq!(header(&reply, "set-cookie"), "", "{accept}: no choice, no cookie");
    }
    // The contract's words, literally.
    let hindi = get_in(&app, &page, "hi").await.body;
    for words in ["इनपुट", "आउटपुट", "पाउंड:", "किलोग्राम:", "st.session_state ऑब्जेक्ट:"]
    {
        assert!(hindi.contains(words), "no {words}");
    }
    // The dump keeps its JSON keys and ASCII numbers.
    app.commit(&sid, "lbs", "१०").await;
    let hindi = get_in(&app, &page, "hi").await.body;
    assert!(hindi.contains("value=\"10.00\"") && hindi.contains(">4.5359237<"), "{hindi}");
    assert!(hindi.contains("\"lbs\"") && hindi.contains("\"kg\""));
}

#[tokio::test]
async fn the_switch_sets_a_cookie_that_outlasts_the_url_and_beats_the_header() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let page = format!("/s/{sid}");

    let switched = get_in(&app, &format!("{page}?lang=hi"), "en").await;
    assert_eq!(switched.status, 200);
    assert_in(&switched, HI, "?lang=hi");
    assert_eq!(header(&switched, "set-cookie"), "lang=hi; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly");

    // A reload (same URL, or the bare session URL) with the cookie stays Hindi.
    assert_in(&with_cookie(&app, &page).await, HI, "the cookie");
    // … so are a new session and the pages of errors.
    let fresh = with_cookie(&app, "/").await;
    assert_eq!((fresh.status, header(&fresh, "location").starts_with("/s/")), (303, true));
    let missing = with_cookie(&app, "/nowhere").await;
    assert_eq!(missing.status, 404);
    assert_in(&missing, HI, "the 404 with the cookie");

    // Back to English, by the switch on the Hindi page.
    let english = format!("{page}?lang=en");
    let back =
        Reply::read(app.get_with(&english, &[("accept-language", "hi"), ("cookie", "lang=hi")]).await).await;
    assert_in(&back, EN, "?lang=en");
    assert_eq!(header(&back, "set-cookie"), "lang=en; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly");

    // Nonsense changes nothing: no cookie, the header decides.
    for query in ["?lang=xx", "?lang=", "?lang=%FF", "?lang=hi&lang=en"] {
        let reply = get_in(&app, &format!("{page}{query}"), "en").await;
        let t = if query.starts_with("?lang=hi") { HI } else { EN };
        assert_in(&reply, t, query);
        assert_eq!(header(&reply, "set-cookie").is_empty(), t.tag == "en", "{query}");
    }
    let garbage = app.get_with(&page, &[("accept-language", "hi"), ("cookie", "lang=klingon; lang")]);
    assert_in(&Reply::read(garbage.await).await, HI, "a garbage cookie is ignored");
}

/// The read-only view, the fragments, and the status lines' words.
#[tokio::test]
async fn the_read_only_view_and_the_fragments_speak_the_language_too() {
    let app = spawn_app().await;
    let (sid, token) = app.session_and_token().await;
    for t in [EN, HI] {
        let reader = get_in(&app, &format!("/v/{token}"), t.tag).await;
        assert_eq!(reader.status, 200);
        assert_in(&reader, t, "the read-only view");
        for words in [
            t.share.notice,
            t.input,
            t.output,
            t.lbs.label,
            t.kg.label,
            t.live.reconnecting,
            t.live.session_ended,
        ] {
            assert!(reader.body.contains(words), "{}: no {words:?}", t.tag);
        }
        let fragment = get_in(&app, &format!("/s/{sid}/fragments/converter"), t.tag).await;
        assert_eq!(header(&fragment, "content-language"), t.tag);
        for words in [
            t.lbs.label,
            t.lbs.decrease,
            t.kg.increase,
            t.field_notes.press_enter,
            t.live.connecting,
            t.live.changed_elsewhere,
        ] {
            assert!(fragment.body.contains(words), "{}: the fragment has no {words:?}", t.tag);
        }
        let state = get_in(&app, &format!("/v/{token}/fragments/state"), t.tag).await;
        assert!(state.body.contains(&format!("aria-label=\"{}\"", t.state_object)), "{}", state.body);
    }
}

/// Every refusal and error message, in both languages: on its page, and
/// (for a widget) as htmx's message line.
#[tokio::test]
async fn every_refusal_and_error_is_in_the_language_of_the_request() {
    let app = spawn_app_with(common::config(&["--max-streams-per-client", "1"])).await;
    let sid = app.new_session().await;
    // Holds this client's one stream, so the next one is a 503.
    let held = app.client.get(app.url(&format!("/s/{sid}/events"))).send().await.expect("a stream");
    assert_eq!(held.status(), 200);
    let widget = format!("/s/{sid}/widgets/lbs");
    let unknown = "/s/AAAAAAAAAAAAAAAAAAAAAA";
    for t in [EN, HI] {
        let e = &t.errors;
        let pages: Vec<(&str, Reply, u16, &str, &str)> = vec![
            (
                "unknown path",
                get_in(&app, "/nowhere", t.tag).await,
                404,
                e.not_found.title,
                e.not_found.message,
            ),
            (
                "unknown session",
                get_in(&app, unknown, t.tag).await,
                404,
                e.unknown_session.title,
                e.unknown_session.message,
            ),
            (
                "405",
                Reply::read(request(&app, "DELETE", &widget, t.tag).send().await.expect("DELETE")).await,
                405,
                e.method_not_allowed.title,
                e.method_not_allowed.message,
            ),
            (
                "413",
                post_in(&app, &widget, &format!("lbs=1&pad={}", "x".repeat(9000)), false, t.tag).await,
                413,
                e.payload_too_large.title,
                e.payload_too_large.message,
            ),
            (
                "503",
                get_in(&app, &format!("/s/{sid}/events"), t.tag).await,
                503,
                e.too_many_views_of_client.title,
                e.too_many_views_of_client.message,
            ),
            (
                "400 step",
                post_in(&app, &widget, "lbs=1&step=x", false, t.tag).await,
                400,
                e.bad_request,
                e.bad_step,
            ),
            (
                "400 no value",
                post_in(&app, &widget, "kg=1", false, t.tag).await,
                400,
                e.bad_request,
                e.missing_value,
            ),
            ("400 stream", get_in(&app, "/events", t.tag).await, 400, e.bad_request, e.stream_no_session),
        ];
        for (what, reply, status, title, message) in pages {
            let what = format!("{what} ({})", t.tag);
            assert_eq!(reply.status, status, "{what}: {}", reply.body);
            assert_in(&reply, t, &what);
            assert!(reply.body.contains(&format!("<title>{title}</title>")), "{what}: {}", reply.body);
            assert!(reply.body.contains(message), "{what}: no {message:?} in {}", reply.body);
            assert!(reply.body.contains(t.live.new_session), "{what}: no way back");
        }

        // Refusals, as htmx's message line and as a page of their own.
        let overflow = t.refusal(Refusal::Overflow(Key::Lbs));
        let refusals = [
            ("lbs", "lbs=abc", t.field_notes.not_a_number),
            ("lbs", "lbs=%E0%A5%A7x", t.field_notes.not_a_number),
            ("lbs", "lbs=1e309", t.field_notes.number_too_large),
            ("kg", "kg=1e308", overflow.as_str()),
        ];
        for (key, body, message) in refusals {
            for htmx in [true, false] {
                let what = format!("{body} (htmx: {htmx}, {})", t.tag);
                let reply = post_in(&app, &format!("/s/{sid}/widgets/{key}"), body, htmx, t.tag).await;
                assert_eq!(reply.status, 422, "{what}");
                assert_eq!(header(&reply, "content-language"), t.tag, "{what}");
                assert!(reply.body.contains(message), "{what}: no {message:?} in {}", reply.body);
                if !htmx {
                    let title = t.error_title.replace("{title}", "st.session_state");
                    assert!(reply.body.contains(&format!("<title>{title}</title>")), "{what}");
                }
            }
        }
        // A store failure's line under the field, for htmx.
        let refused = post_in(&app, "/s/AAAAAAAAAAAAAAAAAAAAAA/widgets/lbs", "lbs=1", true, t.tag).await;
        assert_eq!(refused.status, 404);
        assert!(refused.body.contains(e.unknown_session.message), "{}", refused.body);
    }
    // The overflow message names the field in the sentence's own words.
    assert!(HI.refusal(Refusal::Overflow(Key::Kg)).contains("किलोग्राम का मान"));
}

#[tokio::test]
async fn devanagari_digits_are_numbers_and_mixed_text_is_not() {
    let app = spawn_app().await;
    let sid = app.new_session().await;
    let widget = format!("/s/{sid}/widgets/lbs");
    for (typed, stored) in
        [("१०", "10.0"), ("२.५", "2.5"), ("-१२३.४५", "-123.45"), ("١٢", "12.0"), ("１０", "10.0")]
    {
        let body = format!("lbs={}", form_urlencoded::byte_serialize(typed.as_bytes()).collect::<String>());
        let reply = post_in(&app, &widget, &body, true, "hi").await;
        assert_eq!(reply.status, 200, "{typed}: {}", reply.body);
        let state = app.state_json(&sid).await;
        assert!(state.starts_with(&format!("{{\"lbs\":{stored},")), "{typed}: {state}");
    }
    let before = app.state_json(&sid).await;
    for typed in ["१x", "x१", "१,५", "१..२", "½", "Ⅻ"] {
        let body = format!("lbs={}", form_urlencoded::byte_serialize(typed.as_bytes()).collect::<String>());
        let reply = post_in(&app, &widget, &body, true, "hi").await;
        assert_eq!(reply.status, 422, "{typed}");
        assert!(reply.body.contains(HI.field_notes.not_a_number), "{typed}: {}", reply.body);
        assert!(reply.body.contains(&format!("aria-valuetext=\"{typed}\"")), "{typed}: as typed");
    }
    assert_eq!(app.state_json(&sid).await, before, "refusals change nothing");
}
