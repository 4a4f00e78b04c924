//! हिन्दी. Numbers in fields and in the state dump stay in ASCII digits,
//! as Hindi readers mostly see them in forms; typed Devanagari digits are
//! accepted all the same.

use super::{Errors, Field, FieldNotes, Live, Problem, Share, Texts};

pub const TEXTS: Texts = Texts {
    tag: "hi",
    name: "हिन्दी",
    languages: "भाषा",

    lbs: Field {
        label: "पाउंड:", name: "पाउंड", decrease: "पाउंड घटाएँ", increase: "पाउंड बढ़ाएँ"
    },
    kg: Field {
        label: "किलोग्राम:", name: "किलोग्राम", decrease: "किलोग्राम घटाएँ", increase: "किलोग्राम बढ़ाएँ"
    },
    input: "इनपुट",
    output: "आउटपुट",
    state_object: "st.session_state ऑब्जेक्ट:",
    field_notes: FieldNotes {
        press_enter: "लागू करने के लिए Enter दबाएँ",
        not_a_number: "कोई संख्या लिखें, जैसे 10 या 4.54।",
        number_too_large: "यह संख्या बहुत बड़ी है।",
        result_too_large: "बहुत बड़ी संख्या: {field} का मान सीमित संख्या नहीं रहेगा।",
    },
    share: Share {
        prompt: "लाइव, केवल पढ़ने वाला दृश्य साझा करें:",
        link: "केवल पढ़ने का लिंक",
        notice: "लाइव, केवल पढ़ने वाला दृश्य।",
    },
    live: Live {
        connecting: "जुड़ रहा है…",
        reconnecting: "फिर से जुड़ रहा है…",
        session_ended: "यह सत्र समाप्त हो गया है।",
        new_session: "नया सत्र शुरू करें",
        changed_elsewhere: "दूसरे दृश्य में बदला गया:",
    },

    error_title: "त्रुटि: {title}",
    errors: Errors {
        unknown_session: Problem {
            title: "सत्र नहीं मिला",
            message: "यह सत्र मौजूद नहीं है या समाप्त हो चुका है। कुछ समय तक उपयोग न होने पर सत्र समाप्त हो जाते हैं।",
        },
        not_found: Problem {
            title: "नहीं मिला", message: "इस पते पर कुछ नहीं है।"
        },
        method_not_allowed: Problem {
            title: "यह तरीका स्वीकार्य नहीं",
            message: "यह पता इस तरीके (method) से भेजा गया अनुरोध स्वीकार नहीं करता।",
        },
        payload_too_large: Problem {
            title: "अनुरोध बहुत बड़ा है",
            message: "अनुरोध का आकार इस ऐप की सीमा से बड़ा है।",
        },
        unsupported_media_type: Problem {
            title: "असमर्थित मीडिया प्रकार",
            message: "फ़ॉर्म को application/x-www-form-urlencoded के रूप में भेजें।",
        },
        too_many_views_of_session: Problem {
            title: "बहुत सारे दृश्य खुले हैं",
            message: "इस सत्र के बहुत सारे दृश्य खुले हैं। एक बंद करके फिर कोशिश करें।",
        },
        too_many_views_of_client: Problem {
            title: "बहुत सारे दृश्य खुले हैं",
            message: "इस सर्वर पर आपके बहुत सारे लाइव दृश्य खुले हैं। कुछ बंद करके फिर कोशिश करें।",
        },
        too_many_views: Problem {
            title: "सर्वर व्यस्त है",
            message: "सर्वर पर बहुत सारे दृश्य खुले हैं। थोड़ी देर में फिर कोशिश करें।",
        },
        timeout: Problem {
            title: "अनुरोध का समय समाप्त", message: "अनुरोध में बहुत ज़्यादा समय लगा।"
        },
        too_many_sessions: Problem {
            title: "बहुत सारे नए सत्र",
            message: "आपने कम समय में बहुत सारे सत्र शुरू किए हैं। थोड़ा रुककर फिर कोशिश करें।",
        },
        cross_site: Problem {
            title: "दूसरी साइट से नहीं",
            message: "कोई दूसरी साइट यहाँ सत्र शुरू नहीं कर सकती। सत्र शुरू करने के लिए यह पता सीधे खोलें।",
        },
        internal: Problem {
            title: "सर्वर त्रुटि", message: "हमारी ओर से कुछ गड़बड़ हो गई। फिर कोशिश करें।"
        },
        store_unavailable: Problem {
            title: "अभी उपलब्ध नहीं",
            message: "ऐप अभी अपने सत्र भंडार तक नहीं पहुँच पा रहा है। थोड़ी देर में फिर कोशिश करें।",
        },
        bad_request: "गलत अनुरोध",
        missing_value: "फ़ॉर्म में इस फ़ील्ड का कोई मान नहीं है।",
        bad_step: "step का मान up या down होना चाहिए।",
        stream_parameters: "इवेंट स्ट्रीम केवल s= और v= पैरामीटर लेती है।",
        stream_not_a_session: "यह न तो सत्र आईडी है, न केवल पढ़ने का टोकन।",
        stream_too_many: "एक इवेंट स्ट्रीम में अधिकतम 32 सत्र हो सकते हैं।",
        stream_no_session: "कम से कम एक सत्र बताएँ: /events?s={sid} या ?v={token}।",
        bad_host: "Host हेडर मौजूद नहीं है या गलत है।",
        unreadable_body: "अनुरोध का मुख्य भाग पढ़ा नहीं जा सका।",
    },
};
