//! A run of committed widget forms, decoded and applied through the real
//! store path (`SessionStore::apply` on the in-memory backend), then
//! rendered. After every step: the state is finite, pounds and kilograms
//! agree as the callback that ran left them, the version counts changes
//! exactly, and a refused form changes nothing.
//!
//! Input: forms separated by `\n`; each form's first byte picks the
//! widget (even: `lbs`, odd: `kg`), the rest is its urlencoded body.

#![no_main]

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use libfuzzer_sys::fuzz_target;
use weight_converter::session::state::{kilograms_to_pounds, pounds_to_kilograms};
use weight_converter::session::{
    Key, MemoryStore, Outcome, SessionId, SessionStore, Snapshot, StoreLimits, WidgetForm,
};
use weight_converter::views::{ChangedBy, change_response, refusal_response};

struct Harness {
    runtime: tokio::runtime::Runtime,
    store: SessionStore,
}

static HARNESS: LazyLock<Harness> = LazyLock::new(|| Harness {
    runtime: tokio::runtime::Builder::new_current_thread().build().expect("a runtime"),
    store: SessionStore::new(Arc::new(MemoryStore::new(StoreLimits {
        max_sessions: 1_000,
        ttl: Duration::from_secs(3600),
        unchanged_ttl: Duration::from_secs(3600),
    }))),
});

fuzz_target!(|data: &[u8]| {
    let Harness { runtime, store } = &*HARNESS;
    runtime.block_on(async {
        let id = store.create().await.expect("the memory store never fails");
        for line in data.split(|&b| b == b'\n').take(64) {
            let Some((&selector, body)) = line.split_first() else { continue };
            let key = Key::ALL[usize::from(selector) % Key::ALL.len()];
            commit(store, &id, key, body).await;
        }
    });
});

async fn commit(store: &SessionStore, id: &SessionId, key: Key, body: &[u8]) {
    let before = stored(store, id).await;
    let Ok(form) = WidgetForm::decode(key, body) else {
        return assert_eq!(stored(store, id).await, before);
    };
    let edit = match form.edit() {
        Ok(edit) => edit,
        Err(why) => {
            shown_back_escaped(&form.text, |text| refusal_response(&before, key, text, &why.to_string()).0);
            return assert_eq!(stored(store, id).await, before);
        }
    };
    let outcome = store.apply(id, edit, form.view.as_ref()).await.expect("never fails");
    let after = stored(store, id).await;
    match outcome.expect("the session exists") {
        Outcome::Changed(snapshot) => {
            assert_eq!(snapshot, after);
            assert_eq!(after.version, before.version + 1);
            let state = after.state;
            assert!(state.entries().all(|(_, v)| v.is_finite()), "{state:?}");
            match key {
                Key::Lbs => assert_eq!(state[Key::Kg], pounds_to_kilograms(state[Key::Lbs]), "{state:?}"),
                Key::Kg => assert_eq!(state[Key::Lbs], kilograms_to_pounds(state[Key::Kg]), "{state:?}"),
            }
            assert!(!change_response(&after, key, ChangedBy::of(&edit)).0.is_empty());
        }
        Outcome::Unchanged(snapshot) => assert_eq!((snapshot, after), (before, before)),
        Outcome::Refused(why, snapshot) => {
            assert_eq!((snapshot, after), (before, before));
            shown_back_escaped(&form.text, |text| refusal_response(&after, key, text, &why.to_string()).0);
        }
    }
}

async fn stored(store: &SessionStore, id: &SessionId) -> Snapshot {
    store.get(id).await.expect("never fails").expect("the session exists")
}

/// What a user typed is shown back escaped: it adds no tag and no
/// attribute quote to the markup that a harmless text would not.
fn shown_back_escaped(typed: &str, render: impl Fn(&str) -> String) {
    let structure = |html: &str| (html.matches('<').count(), html.matches('"').count());
    assert_eq!(structure(&render(typed)), structure(&render("x")), "{typed:?} changed the markup");
}
