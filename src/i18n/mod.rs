//! The words on every page, in each language the app speaks, and which
//! language a request gets.
//!
//! Each language is one file (`en.rs`, `hi.rs`) that fills in [`Texts`];
//! the compiler refuses a language that leaves a text out. To add one:
//! copy `en.rs`, translate it, and add a [`Lang`] variant and its file to
//! the two lists below. Views never ask which language it is: they take
//! the `&Texts` they are given.

mod en;
mod hi;

use axum::http::{HeaderMap, HeaderValue, header};

use crate::negotiation::{Quality, weighted};
use crate::session::number::NumberError;
use crate::session::{Key, Refusal};

/// A language the app speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Lang {
    #[default]
    English,
    Hindi,
}

impl Lang {
    pub const ALL: [Lang; 2] = [Lang::English, Lang::Hindi];

    pub const fn texts(self) -> &'static Texts {
        match self {
            Self::English => &en::TEXTS,
            Self::Hindi => &hi::TEXTS,
        }
    }

    /// The BCP 47 tag: `<html lang>`, `Content-Language`, `?lang=`.
    pub fn tag(self) -> &'static str {
        self.texts().tag
    }

    pub fn from_tag(tag: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|lang| lang.tag().eq_ignore_ascii_case(tag))
    }

    /// The language of the request: a `?lang=` switch, else the `lang`
    /// cookie the switch left, else the best of `Accept-Language`.
    pub fn of_request(query: Option<&str>, headers: &HeaderMap) -> Choice {
        if let Some(lang) = query.and_then(switch_in_query) {
            return Choice { lang, switched: true };
        }
        let lang = cookie(headers).or_else(|| accept_language(headers)).unwrap_or_default();
        Choice { lang, switched: false }
    }

    /// The one this request runs in (set around every request by the
    /// layer that chose it; English outside one). Error responses render
    /// without the request at hand, so they ask here.
    pub fn current() -> Self {
        CURRENT.try_with(|lang| *lang).unwrap_or_default()
    }

    /// Runs `future` with `self` as [`Lang::current`].
    pub fn scope<F: Future>(self, future: F) -> tokio::task::futures::TaskLocalFuture<Lang, F> {
        CURRENT.scope(self, future)
    }

    pub fn sync_scope<R>(self, f: impl FnOnce() -> R) -> R {
        CURRENT.sync_scope(self, f)
    }
}

tokio::task_local! {
    static CURRENT: Lang;
}

/// The language a request gets, and whether it asked for it by `?lang=`
/// (then its answer remembers the choice in a cookie).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Choice {
    pub lang: Lang,
    pub switched: bool,
}

impl Choice {
    /// The `Set-Cookie` that keeps a switch: a preference, not session
    /// state, so it is the same for every session in this browser.
    pub fn cookie(self) -> Option<HeaderValue> {
        self.switched.then(|| {
            let value =
                format!("{COOKIE}={}; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly", self.lang.tag());
            HeaderValue::try_from(value).expect("a tag is ASCII")
        })
    }
}

const COOKIE: &str = "lang";

fn switch_in_query(query: &str) -> Option<Lang> {
    form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| name == "lang")
        .and_then(|(_, tag)| Lang::from_tag(&tag))
}

fn cookie(headers: &HeaderMap) -> Option<Lang> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .and_then(|(_, tag)| Lang::from_tag(tag.trim()))
}

/// The supported language with the highest weight; on a tie, the first
/// listed. `hi-IN` counts as `hi`; `q=0` means "not this one".
fn accept_language(headers: &HeaderMap) -> Option<Lang> {
    let value = headers.get(header::ACCEPT_LANGUAGE)?.to_str().ok()?;
    let mut best: Option<(Lang, Quality)> = None;
    for (range, weight) in weighted(value).take(32) {
        let primary = range.split('-').next().unwrap_or("");
        let Some(lang) = Lang::from_tag(primary) else { continue };
        if weight > 0 && best.is_none_or(|(_, w)| weight > w) {
            best = Some((lang, weight));
        }
    }
    best.map(|(lang, _)| lang)
}

/// Every word the app shows, in one language.
pub struct Texts {
    /// BCP 47.
    pub tag: &'static str,
    /// The language's name in itself, for the switch on other pages.
    pub name: &'static str,
    /// The switch's accessible name.
    pub languages: &'static str,

    pub lbs: Field,
    pub kg: Field,
    pub input: &'static str,
    pub output: &'static str,
    pub state_object: &'static str,
    pub field_notes: FieldNotes,
    pub share: Share,
    pub live: Live,

    /// A page's title while it shows a refusal; `{title}` is the title.
    pub error_title: &'static str,
    pub errors: Errors,
}

/// What may show under a field: a hint, or why its text is not a value.
pub struct FieldNotes {
    /// Under a field that holds text not yet committed.
    pub press_enter: &'static str,
    pub not_a_number: &'static str,
    pub number_too_large: &'static str,
    /// `{field}` is the name of the field that would overflow.
    pub result_too_large: &'static str,
}

/// The read-only link's words.
pub struct Share {
    /// Before the link, on a page that can write.
    pub prompt: &'static str,
    pub link: &'static str,
    /// At the top of the read-only page.
    pub notice: &'static str,
}

/// Whether a view is live, and what it says when another view changed it.
pub struct Live {
    pub connecting: &'static str,
    pub reconnecting: &'static str,
    pub session_ended: &'static str,
    pub new_session: &'static str,
    /// Said when another view changed the values, before them.
    pub changed_elsewhere: &'static str,
}

/// One field's words.
pub struct Field {
    /// `Pounds:`, as in `st.number_input("Pounds:", key="lbs")`.
    pub label: &'static str,
    /// As named in sentences: `Pounds`.
    pub name: &'static str,
    pub decrease: &'static str,
    pub increase: &'static str,
}

/// An error page's title and what it says.
pub struct Problem {
    pub title: &'static str,
    pub message: &'static str,
}

pub struct Errors {
    pub unknown_session: Problem,
    pub not_found: Problem,
    pub method_not_allowed: Problem,
    pub payload_too_large: Problem,
    pub unsupported_media_type: Problem,
    pub too_many_views_of_session: Problem,
    pub too_many_views_of_client: Problem,
    pub too_many_views: Problem,
    pub timeout: Problem,
    pub too_many_sessions: Problem,
    pub cross_site: Problem,
    pub internal: Problem,
    pub store_unavailable: Problem,
    /// The title of every 400; the message is one of those below.
    pub bad_request: &'static str,
    pub missing_value: &'static str,
    pub bad_step: &'static str,
    pub stream_parameters: &'static str,
    pub stream_not_a_session: &'static str,
    /// Must say the cap, 32 (a test checks it).
    pub stream_too_many: &'static str,
    pub stream_no_session: &'static str,
    pub bad_host: &'static str,
    pub unreadable_body: &'static str,
}

impl Texts {
    pub fn field(&self, key: Key) -> &Field {
        match key {
            Key::Lbs => &self.lbs,
            Key::Kg => &self.kg,
        }
    }

    /// Why typed text is not a value, as shown beside the field.
    pub fn number_error(&self, why: NumberError) -> &'static str {
        match why {
            NumberError::NotANumber => self.field_notes.not_a_number,
            NumberError::TooLarge => self.field_notes.number_too_large,
        }
    }

    /// Why a callback refused an edit, as shown beside the field.
    pub fn refusal(&self, why: Refusal) -> String {
        match why {
            Refusal::Overflow(key) => fill(self.field_notes.result_too_large, "field", self.field(key).name),
        }
    }
}

/// `template` with `{name}` replaced by `value`.
pub fn fill(template: &str, name: &str, value: &str) -> String {
    template.replace(&format!("{{{name}}}"), value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::session::WIDGETS;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        pairs.iter().map(|(k, v)| (axum::http::HeaderName::from_static(k), v.parse().unwrap())).collect()
    }

    fn accept(value: &str) -> Lang {
        Lang::of_request(None, &headers(&[("accept-language", value)])).lang
    }

    #[test]
    fn accept_language_picks_hindi_only_when_preferred() {
        let hindi = ["hi", "hi-IN,hi;q=0.9,en;q=0.8", "HI-in", "en;q=0.4, hi;q=0.5"];
        let best_we_speak = "fr, hi;q=0.5";
        let english = ["en-US,en;q=0.9,hi;q=0.8", "hi;q=0, en;q=0.1", "hi;q=0", "fr-FR", "hindi, *", ""];
        let malformed_weights = "hi;q=2, hi;q=abc, hi;q=0.1234";
        for header in hindi.into_iter().chain([best_we_speak]) {
            assert_eq!(accept(header), Lang::Hindi, "{header}");
        }
        for header in english.into_iter().chain([malformed_weights]) {
            assert_eq!(accept(header), Lang::English, "{header}");
        }
        assert_eq!(Lang::of_request(None, &HeaderMap::new()).lang, Lang::English);
    }

    #[test]
    fn a_switch_beats_the_cookie_which_beats_the_header() {
        let h = headers(&[("accept-language", "en"), ("cookie", "a=b; lang=hi; c=d")]);
        assert_eq!(Lang::of_request(None, &h), Choice { lang: Lang::Hindi, switched: false });
        assert_eq!(Lang::of_request(Some("lang=en"), &h), Choice { lang: Lang::English, switched: true });
        assert_eq!(
            Lang::of_request(Some("x=1&lang=xx"), &h).lang,
            Lang::Hindi,
            "an unknown switch is ignored"
        );
        let garbage = headers(&[("accept-language", "hi"), ("cookie", "lang=klingon")]);
        assert_eq!(Lang::of_request(None, &garbage).lang, Lang::Hindi);
    }

    #[test]
    fn only_a_switch_sets_the_cookie() {
        let switched = Choice { lang: Lang::Hindi, switched: true };
        let cookie = switched.cookie().unwrap();
        assert_eq!(cookie.to_str().unwrap(), "lang=hi; Path=/; Max-Age=31536000; SameSite=Lax; HttpOnly");
        assert_eq!(Choice { lang: Lang::Hindi, switched: false }.cookie(), None);
    }

    #[test]
    fn the_contract_strings() {
        let hi = Lang::Hindi.texts();
        assert_eq!(
            [hi.input, hi.output, hi.lbs.label, hi.kg.label, hi.state_object],
            ["इनपुट", "आउटपुट", "पाउंड:", "किलोग्राम:", "st.session_state ऑब्जेक्ट:"]
        );
        let en = Lang::English.texts();
        assert_eq!([en.lbs.label, en.kg.label], [WIDGETS[0].label, WIDGETS[1].label], "the seed's labels");
        assert_eq!([en.tag, hi.tag], ["en", "hi"]);
    }

    #[test]
    fn templates_name_their_placeholders() {
        for lang in Lang::ALL {
            let t = lang.texts();
            assert!(t.field_notes.result_too_large.contains("{field}"), "{}", t.tag);
            assert!(t.error_title.contains("{title}"), "{}", t.tag);
            assert!(t.errors.stream_too_many.contains("32"), "{}", t.tag);
        }
        assert_eq!(fill("Too large: {field}.", "field", "Pounds"), "Too large: Pounds.");
        let en = Lang::English.texts();
        assert_eq!(
            en.refusal(Refusal::Overflow(Key::Kg)),
            Refusal::Overflow(Key::Kg).to_string(),
            "as logged"
        );
        assert_eq!(en.number_error(NumberError::NotANumber), NumberError::NotANumber.to_string());
        assert_eq!(
            Lang::Hindi.texts().refusal(Refusal::Overflow(Key::Lbs)),
            "बहुत बड़ी संख्या: पाउंड का मान सीमित संख्या नहीं रहेगा।"
        );
    }
}
