//! The page a one-time link opens: a plain form, served by Rollcall and working
//! without JavaScript, where a new user sets their first password (an invite)
//! or a user who forgot theirs chooses a new one (a password reset).
//!
//! The token is in the path (it is the link), so the page never leaks it onward:
//! no referrer, no caching, no framing, and request logs redact the path.

use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Form, Path},
};
use serde::Deserialize;

use super::origin_of;
use crate::{
    auth::cookies,
    auth::password::PasswordPolicy,
    error::AppError,
    services::{
        auth::policy_of,
        invites::{self, Purpose},
        organizations,
    },
    state::AppState,
};

#[derive(Deserialize)]
pub struct SetPassword {
    password: String,
    confirm: String,
}

/// What the page says of an open link: for whom, what it is for, and the
/// rules the new password must meet.
struct Opened {
    email: String,
    purpose: Purpose,
    policy: PasswordPolicy,
}

/// The open link `token` stands for; the page to answer with when there is none.
async fn open(state: &AppState, token: &str) -> Result<Opened, Response> {
    let (link, user) = match invites::find_open(&state.db, token).await {
        Ok(found) => found,
        Err(AppError::BadInput(_)) => return Err(not_found()),
        Err(_) => return Err(unavailable()),
    };
    let organization = match organizations::of_user(&state.db, &user).await {
        Ok(Some(organization)) => organization,
        Ok(None) | Err(_) => return Err(unavailable()),
    };
    Ok(Opened {
        email: user.email,
        purpose: Purpose::of(&link),
        policy: policy_of(&organization),
    })
}

#[handler]
pub async fn show(Path(token): Path<String>, state: Data<&AppState>) -> Response {
    match open(&state, &token).await {
        Ok(opened) => page(StatusCode::OK, &form(&opened, None)),
        Err(response) => response,
    }
}

#[handler]
pub async fn submit(
    req: &Request,
    Path(token): Path<String>,
    state: Data<&AppState>,
    Form(input): Form<SetPassword>,
) -> Response {
    let opened = match open(&state, &token).await {
        Ok(opened) => opened,
        Err(response) => return response,
    };
    if input.password != input.confirm {
        return page(
            StatusCode::UNPROCESSABLE_ENTITY,
            &form(&opened, Some("The two passwords differ.")),
        );
    }
    match state
        .auth
        .set_password_with_link(&token, &input.password, origin_of(req))
        .await
    {
        Ok(logged_in) => {
            let done = match opened.purpose {
                Purpose::Invite => {
                    "<h1>Your password is set</h1><p>You are signed in. You can close this page and use Rollcall.</p>"
                }
                Purpose::PasswordReset => {
                    "<h1>Your password is changed</h1><p>You are signed in here and signed out everywhere else. You can close this page and use Rollcall.</p>"
                }
            };
            let mut response = page(StatusCode::OK, done);
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
                &form(&opened, Some(&reason)),
            )
        }
        Err(_) => unavailable(),
    }
}

fn form(opened: &Opened, error: Option<&str>) -> String {
    let error = error
        .map(|e| format!(r#"<p class="error" role="alert">{}</p>"#, escape(e)))
        .unwrap_or_default();
    let (title, button) = match opened.purpose {
        Purpose::Invite => ("Set your password", "Set password"),
        Purpose::PasswordReset => ("Choose a new password", "Change password"),
    };
    let min = opened.policy.min_length;
    let rule = if opened.policy.require_digit {
        format!("At least {min} characters, with a digit.")
    } else {
        format!("At least {min} characters.")
    };
    format!(
        r#"<h1>{title}</h1>
<p>For <strong>{email}</strong>. {rule}</p>
{error}
<form method="post">
  <label for="password">New password</label>
  <input id="password" name="password" type="password" autocomplete="new-password" required minlength="{min}" maxlength="128">
  <label for="confirm">Repeat it</label>
  <input id="confirm" name="confirm" type="password" autocomplete="new-password" required minlength="{min}" maxlength="128">
  <button type="submit">{button}</button>
</form>"#,
        email = escape(&opened.email),
    )
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "<h1>This link does not work</h1><p>It is invalid, already used or expired. Ask your administrator for a new invite, or ask for a new password reset where you sign in.</p>",
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
