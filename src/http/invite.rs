//! The page an invite link opens: a plain form, served by Rollcall and working
//! without JavaScript, where a new user sets their first password.
//!
//! The token is in the path (it is the link), so the page never leaks it onward:
//! no referrer, no caching, no framing, and request logs redact the path.

use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Form, Path},
};
use serde::Deserialize;

use super::{cookies, origin_of};
use crate::{app::AppState, error::AppError, services::invites};

#[derive(Deserialize)]
pub struct SetPassword {
    password: String,
    confirm: String,
}

#[handler]
pub async fn show(Path(token): Path<String>, state: Data<&AppState>) -> Response {
    match invites::find_open(&state.db, &token).await {
        Ok((_, user)) => page(StatusCode::OK, &form(&user.email, None)),
        Err(AppError::BadInput(_)) => not_found(),
        Err(_) => unavailable(),
    }
}

#[handler]
pub async fn submit(
    req: &Request,
    Path(token): Path<String>,
    state: Data<&AppState>,
    Form(input): Form<SetPassword>,
) -> Response {
    let email = match invites::find_open(&state.db, &token).await {
        Ok((_, user)) => user.email,
        Err(AppError::BadInput(_)) => return not_found(),
        Err(_) => return unavailable(),
    };
    if input.password != input.confirm {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &form(&email, Some("The two passwords differ.")),
        );
    }
    match state
        .auth
        .accept_invite(&token, &input.password, origin_of(req))
        .await
    {
        Ok(logged_in) => {
            let mut response = page(
                StatusCode::OK,
                "<h1>Your password is set</h1><p>You are signed in. You can close this page and use Rollcall.</p>",
            );
            if let Ok(value) =
                cookies::session_cookie(logged_in.token.expose(), state.config.secure_cookies)
                    .parse()
            {
                response.headers_mut().insert(header::SET_COOKIE, value);
            }
            response
        }
        Err(AppError::BadInput(fields)) => {
            let reason = fields
                .iter()
                .map(|f| format!("Password {}.", f.message))
                .collect::<Vec<_>>()
                .join(" ");
            page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &form(&email, Some(&reason)),
            )
        }
        Err(_) => unavailable(),
    }
}

fn form(email: &str, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    format!(
        r#"<h1>Set your password</h1>
<p>For <strong>{email}</strong>. At least 8 characters, with a digit.</p>
{error}
<form method="post">
  <label for="password">New password</label>
  <input id="password" name="password" type="password" autocomplete="new-password" required minlength="8" maxlength="128">
  <label for="confirm">Repeat it</label>
  <input id="confirm" name="confirm" type="password" autocomplete="new-password" required minlength="8" maxlength="128">
  <button type="submit">Set password</button>
</form>"#,
        email = escape(email),
    )
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "<h1>This link does not work</h1><p>It is invalid, already used or expired. Ask your administrator for a new invite.</p>",
    )
}

pub(super) fn unavailable() -> Response {
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "<h1>Please try again shortly</h1><p>Rollcall cannot complete this right now.</p>",
    )
}

/// A small page in the house style, with the headers every page holding a token
/// in its URL needs.
pub(super) fn page(status: StatusCode, body: &str) -> Response {
    let html = format!(
        r#"<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rollcall</title>
<style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:2rem auto;padding:0 1rem;line-height:1.5}}
label,input,button{{display:block;width:100%;box-sizing:border-box;font-size:1rem}}input{{padding:.5rem;margin:.25rem 0 1rem}}
button{{padding:.6rem;cursor:pointer}}.error{{color:#a40000;font-weight:600}}</style></head>
<body><main>{body}</main></body></html>"#
    );
    Response::builder()
        .status(status)
        .content_type("text/html; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .header("referrer-policy", "no-referrer")
        .header("x-frame-options", "DENY")
        .header(
            "content-security-policy",
            "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'",
        )
        .body(html)
}

/// Escape text for HTML element content and attribute values.
pub fn escape(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup() {
        assert_eq!(
            super::escape(r#"<a href="x">O'Neil & co</a>"#),
            "&lt;a href=&quot;x&quot;&gt;O&#39;Neil &amp; co&lt;/a&gt;"
        );
    }
}
