//! `POST /s/{sid}/widgets/{key}`: a committed change to one widget.
//!
//! htmx gets the other fields and the dump, as parts for `app.js` to put
//! in place; a plain form gets post/redirect/get. Refused input gets 422 and the
//! field back with a message, and changes nothing. A GET of a widget URL
//! (a reload of the page a refused plain form left) leads back to the page.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};

use crate::context::{AppContext, Ctx};
use crate::error::AppError;
use crate::i18n::Texts;
use crate::session::number::NumberError;
use crate::session::{Key, Outcome, SessionId, Snapshot, WidgetForm};
use crate::telemetry::Rejection;
use crate::views::page::Refused;
use crate::views::{ChangedBy, change_response, refusal_response};

use super::pages::page;

use super::extract::{Form, Htmx, Language, Param};

pub async fn commit(
    ctx: Ctx,
    sid: Result<Param<SessionId>, AppError>,
    Param(key): Param<Key>,
    Htmx(htmx): Htmx,
    Language(t): Language,
    form: Result<Form, AppError>,
) -> Response {
    let committed = async { apply(&ctx, t, sid?.0, key, htmx, &form?).await };
    match committed.await {
        Ok(response) => response,
        // htmx shows why beside the field and leaves what was typed.
        Err(e) if htmx => e.for_field(key),
        Err(e) => e.into_response(),
    }
}

/// `GET /s/{sid}/widgets/{key}`: the page that URL belongs to. A refused
/// plain form shows the page at the POST's URL; reloading or bookmarking
/// it must not end in a 405.
pub async fn back_to_page(Param(sid): Param<SessionId>, Param(_): Param<Key>) -> Redirect {
    Redirect::to(&format!("/s/{}", sid.as_str()))
}

async fn apply(
    ctx: &AppContext,
    t: &Texts,
    sid: SessionId,
    key: Key,
    htmx: bool,
    form: &Form,
) -> Result<Response, AppError> {
    let form = WidgetForm::decode(key, form.body())?;
    let reply = Reply { ctx, t, sid: &sid, key, htmx, text: &form.text };
    let edit = match form.edit() {
        Ok(edit) => edit,
        Err(why) => {
            ctx.metrics.input_rejected(match why {
                NumberError::NotANumber => Rejection::NotANumber,
                NumberError::TooLarge => Rejection::TooLarge,
            });
            return reply.refused(None, t.number_error(why)).await;
        }
    };
    let by = ChangedBy::of(&edit);
    match ctx.store.apply(&sid, edit, form.view.as_ref()).await?.ok_or(AppError::UnknownSession)? {
        Outcome::Changed(snapshot) => {
            ctx.metrics.change_applied();
            ctx.fan_out.publish(&sid, snapshot, form.view);
            Ok(reply.accepted(&snapshot, by))
        }
        Outcome::Unchanged(snapshot) => Ok(reply.accepted(&snapshot, by)),
        Outcome::Refused(why, snapshot) => {
            ctx.metrics.input_rejected(Rejection::Overflow);
            reply.refused(Some(snapshot), &t.refusal(why)).await
        }
    }
}

/// How to answer, depending on who asked.
struct Reply<'a> {
    ctx: &'a AppContext,
    t: &'a Texts,
    sid: &'a SessionId,
    key: Key,
    htmx: bool,
    text: &'a str,
}

impl Reply<'_> {
    fn accepted(&self, snapshot: &Snapshot, by: ChangedBy) -> Response {
        if self.htmx {
            change_response(snapshot, self.key, by).into_response()
        } else {
            Redirect::to(&format!("/s/{}", self.sid.as_str())).into_response()
        }
    }

    /// `known`: the state, when the store already said it; else it is read
    /// here (htmx) or by the page, which reads it with the read token in
    /// one call.
    async fn refused(&self, known: Option<Snapshot>, why: &str) -> Result<Response, AppError> {
        let body = if self.htmx {
            let snapshot = match known {
                Some(snapshot) => snapshot,
                None => self.ctx.snapshot(self.sid).await?,
            };
            refusal_response(&snapshot, self.key, self.text, why)
        } else {
            let refused = Refused { key: self.key, text: self.text, message: why };
            page(self.ctx, self.t, self.sid, Some(refused)).await?
        };
        Ok((StatusCode::UNPROCESSABLE_ENTITY, body).into_response())
    }
}
