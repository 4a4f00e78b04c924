//! English: the tutorial's own words, and the source for translations.

use super::{Errors, Field, FieldNotes, Live, Problem, Share, Texts};

pub const TEXTS: Texts = Texts {
    tag: "en",
    name: "English",
    languages: "Language",

    lbs: Field { label: "Pounds:", name: "Pounds", decrease: "Decrease Pounds", increase: "Increase Pounds" },
    kg: Field {
        label: "Kilograms:",
        name: "Kilograms",
        decrease: "Decrease Kilograms",
        increase: "Increase Kilograms",
    },
    input: "Input",
    output: "Output",
    state_object: "st.session_state object:",
    field_notes: FieldNotes {
        press_enter: "Press Enter to apply",
        not_a_number: "Enter a number, such as 10 or 4.54.",
        number_too_large: "That number is too large.",
        result_too_large: "Too large: {field} would not be a finite number.",
    },
    share: Share {
        prompt: "Share a live, read-only view:",
        link: "read-only link",
        notice: "A live, read-only view.",
    },
    live: Live {
        connecting: "Connecting…",
        reconnecting: "Reconnecting…",
        session_ended: "This session has ended.",
        new_session: "Start a new session",
        changed_elsewhere: "Changed in another view:",
    },

    error_title: "Error: {title}",
    errors: Errors {
        unknown_session: Problem {
            title: "Session not found",
            message: "This session does not exist or has expired. Sessions end after a period of inactivity.",
        },
        not_found: Problem { title: "Not found", message: "There is nothing at this address." },
        method_not_allowed: Problem {
            title: "Method not allowed",
            message: "This address does not accept that method.",
        },
        payload_too_large: Problem {
            title: "Request too large",
            message: "The request body is larger than this app accepts.",
        },
        unsupported_media_type: Problem {
            title: "Unsupported media type",
            message: "Send the form as application/x-www-form-urlencoded.",
        },
        too_many_views_of_session: Problem {
            title: "Too many open views",
            message: "This session has too many open views. Close one and try again.",
        },
        too_many_views_of_client: Problem {
            title: "Too many open views",
            message: "You have too many live views open on this server. Close some and try again.",
        },
        too_many_views: Problem {
            title: "Server busy",
            message: "The server has too many open views. Try again soon.",
        },
        timeout: Problem { title: "Request timeout", message: "The request took too long." },
        too_many_sessions: Problem {
            title: "Too many new sessions",
            message: "You have started many sessions in a short time. Wait a moment, then try again.",
        },
        cross_site: Problem {
            title: "Not from another site",
            message: "Another site cannot start a session here. Open this address directly to start one.",
        },
        internal: Problem { title: "Server error", message: "Something went wrong on our side. Try again." },
        store_unavailable: Problem {
            title: "Temporarily unavailable",
            message: "The app cannot reach its session store right now. Try again in a moment.",
        },
        bad_request: "Bad request",
        missing_value: "The form has no value for this field.",
        bad_step: "step must be up or down.",
        stream_parameters: "An event stream takes only s= and v= parameters.",
        stream_not_a_session: "That is not a session id or a read-only token.",
        stream_too_many: "An event stream carries at most 32 sessions.",
        stream_no_session: "Name at least one session: /events?s={sid} or ?v={token}.",
        bad_host: "The Host header is missing or malformed.",
        unreadable_body: "The request body could not be read.",
    },
};
