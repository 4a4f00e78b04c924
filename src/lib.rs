//! weight-converter: Streamlit's `st.session_state` demo as a live
//! hypermedia app. `routes::router` is the whole app; tests run it on
//! port 0 through [`Server`].

pub mod assets;
pub mod config;
pub mod context;
pub mod error;
pub mod i18n;
pub mod memory;
pub mod negotiation;
pub mod routes;
pub mod server;
pub mod session;
pub mod startup;
pub mod telemetry;
pub mod views;

pub use config::Config;
pub use context::AppContext;
pub use startup::{Server, healthcheck, shutdown_signal};
