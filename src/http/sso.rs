//! The browser's side of single sign-on: `GET /sso/{providerId}/start`
//! sends it to the identity provider, `GET /sso/callback` brings it back,
//! signed in with the session cookie, to where it started.

use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Path, Query},
};
use serde::Deserialize;
use uuid::Uuid;

use super::{
    downloads::{plain, refused},
    origin_of,
};
use crate::{auth::cookies, error::AppError, state::AppState};

#[derive(Deserialize)]
pub struct StartQuery {
    /// Where the browser goes once signed in: this server, or an origin
    /// allowed by `ROLLCALL_CORS_ORIGINS`.
    #[serde(rename = "returnTo")]
    return_to: Option<String>,
}

#[derive(Deserialize)]
pub struct CallbackQuery {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

fn redirect_uri(state: &AppState) -> String {
    format!("{}/sso/callback", state.public_url)
}

/// `return_to` if it leads to this server or an allowed origin (never an
/// open redirect); the server's root by default.
fn return_to(state: &AppState, asked: Option<String>) -> Result<String, AppError> {
    let Some(asked) = asked else {
        return Ok(format!("{}/", state.public_url));
    };
    let origin_of = |raw: &str| url::Url::parse(raw).ok().map(|u| u.origin());
    let wanted = origin_of(&asked)
        .ok_or_else(|| AppError::bad_input("returnTo", "is not an absolute URL"))?;
    let allowed = std::iter::once(state.public_url.as_str())
        .chain(state.config.cors_origins.iter().map(String::as_str))
        .filter_map(origin_of)
        .any(|origin| origin == wanted);
    if allowed {
        Ok(asked)
    } else {
        Err(AppError::bad_input(
            "returnTo",
            "must lead to this server or an origin in ROLLCALL_CORS_ORIGINS",
        ))
    }
}

fn see_other(location: &str) -> poem::ResponseBuilder {
    Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location)
        .header(header::CACHE_CONTROL, "no-store")
}

#[derive(Deserialize)]
pub struct LogoutForm {
    logout_token: String,
}

/// OpenID Connect Back-Channel Logout 1.0: the provider posts a logout token;
/// the account's sessions end on every instance. 200 when it was accepted,
/// 400 when it was not.
#[handler]
pub async fn backchannel_logout(
    poem::web::Form(form): poem::web::Form<LogoutForm>,
    state: Data<&AppState>,
) -> Response {
    match state.auth.sso_backchannel_logout(&form.logout_token).await {
        Ok(_) => Response::builder()
            .status(StatusCode::OK)
            .header(header::CACHE_CONTROL, "no-store")
            .finish(),
        Err(err) => refused(err),
    }
}

#[handler]
pub async fn start(
    Path(id): Path<String>,
    Query(query): Query<StartQuery>,
    state: Data<&AppState>,
) -> Response {
    let Ok(id) = Uuid::parse_str(&id) else {
        return plain(StatusCode::NOT_FOUND, "No such identity provider.");
    };
    let target = match return_to(&state, query.return_to) {
        Ok(target) => target,
        Err(err) => return refused(err),
    };
    match state
        .auth
        .sso_start(id, &redirect_uri(&state), &target)
        .await
    {
        Ok(url) => see_other(&url).finish(),
        Err(err) => refused(err),
    }
}

#[handler]
pub async fn callback(
    req: &Request,
    Query(query): Query<CallbackQuery>,
    state: Data<&AppState>,
) -> Response {
    if let Some(error) = query.error {
        return refused(AppError::forbidden(format!(
            "Single sign-on failed: the identity provider answered {error}."
        )));
    }
    let (Some(code), Some(login)) = (query.code, query.state) else {
        return refused(AppError::bad_input(
            "code",
            "the callback needs code and state",
        ));
    };
    match state
        .auth
        .sso_callback(&code, &login, &redirect_uri(&state), origin_of(req))
        .await
    {
        Ok((logged_in, target)) => see_other(&target)
            .header(
                header::SET_COOKIE,
                cookies::session_cookie(logged_in.token.expose(), state.config.secure_cookies),
            )
            .finish(),
        Err(err) => refused(err),
    }
}
