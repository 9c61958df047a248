//! Poem routes: GraphQL over HTTP and websockets, and what is not GraphQL
//! (health, readiness, metrics, the GraphiQL explorer's own assets, the invite page).

pub mod client_address;
pub mod downloads;
pub mod graphiql;
pub mod graphql;
pub mod health;
pub mod invite;
pub mod metrics;
pub mod multipart;
pub mod patient_page;
pub mod scim;
pub mod sso;
pub mod ws;

use poem::Request;

use crate::{
    auth::cookies,
    auth::{actor::Origin, client_token::ClientToken, session::SessionToken},
    state::AppState,
};

/// How a request presented its credential.
pub enum Presented {
    None,
    Bearer(SessionToken),
    Cookie(SessionToken),
    /// An API client's token, only ever as `Authorization: Bearer`.
    Client(ClientToken),
    /// Something was presented that cannot be a token of ours.
    Malformed,
}

/// Read the credential from `Authorization: Bearer` (a session's or an API
/// client's token) or the session cookie. Tokens in URLs are never looked at.
pub fn presented_token(req: &Request) -> Presented {
    if let Some(value) = req.headers().get(poem::http::header::AUTHORIZATION) {
        let bearer = value.to_str().ok().and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        });
        return match bearer {
            Some(raw) if ClientToken::claims(raw) => {
                ClientToken::parse(raw).map_or(Presented::Malformed, Presented::Client)
            }
            Some(raw) => SessionToken::parse(raw).map_or(Presented::Malformed, Presented::Bearer),
            None => Presented::Malformed,
        };
    }
    match session_cookie(req) {
        Some(value) => SessionToken::parse(value).map_or(Presented::Malformed, Presented::Cookie),
        None => Presented::None,
    }
}

/// The session cookie's value, of the name the configuration calls for.
pub fn session_cookie(req: &Request) -> Option<&str> {
    let secure = req
        .data::<AppState>()
        .is_none_or(|state| state.config.secure_cookies);
    cookies::session_cookie_value(
        req.headers()
            .get_all(poem::http::header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok()),
        secure,
    )
}

/// Where the request comes from: the client's address (the peer's, or the one a
/// trusted proxy forwarded for) and the user agent.
pub fn origin_of(req: &Request) -> Origin {
    let peer = req.remote_addr().as_socket_addr().map(|a| a.ip());
    let trusted = req
        .data::<AppState>()
        .map_or(&[][..], |state| &state.config.trusted_proxies);
    // No proxy is trusted (the default): the header is not even read.
    let forwarded_for: Vec<&str> = if trusted.is_empty() {
        Vec::new()
    } else {
        req.headers()
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect()
    };
    Origin {
        ip_address: client_address::client_address(peer, trusted, &forwarded_for)
            .map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(|ua| ua.chars().take(512).collect()),
    }
}

/// A request path fit for logs: the secret part of link paths (`/invite/{token}`,
/// `/reset-password/{token}`, `/p/{token}`) is replaced.
pub fn loggable_path(path: &str) -> String {
    for prefix in ["/invite/", "/reset-password/", "/p/"] {
        if path.starts_with(prefix) {
            return format!("{prefix}…");
        }
    }
    path.to_owned()
}

/// Whether a request a browser may have made on its own (a websocket upgrade
/// carrying the session cookie) comes from a page Rollcall trusts: the server's
/// own origin (the public URL, or the host the browser addressed) or one of the
/// configured CORS origins. A request without `Origin` is not a browser's.
pub fn trusted_origin(req: &Request) -> bool {
    let Some(origin) = req
        .headers()
        .get(poem::http::header::ORIGIN)
        .map(|v| v.to_str().unwrap_or("null"))
    else {
        return true;
    };
    let origin = origin.trim_end_matches('/');
    if let Some(state) = req.data::<AppState>() {
        let config = &state.config;
        if config
            .cors_origins
            .iter()
            .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin))
        {
            return true;
        }
        if let Some(public) = config
            .public_url
            .as_deref()
            .and_then(|u| url::Url::parse(u).ok())
            && public
                .origin()
                .ascii_serialization()
                .eq_ignore_ascii_case(origin)
        {
            return true;
        }
    }
    let Ok(url) = url::Url::parse(origin) else {
        return false;
    };
    let addressed = req
        .headers()
        .get(poem::http::header::HOST)
        .and_then(|v| v.to_str().ok());
    let authority = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => return false,
    };
    addressed.is_some_and(|host| host.eq_ignore_ascii_case(&authority))
}

/// The policy of HTML pages that set none of their own: our own scripts,
/// styles and images only, no framing, forms posting back here.
const DEFAULT_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Headers every response carries: `nosniff`; HSTS when cookies are Secure
/// (the deployment is HTTPS); a CSP on HTML that chose none.
pub async fn security_headers<E: poem::Endpoint>(
    next: E,
    req: Request,
    secure: bool,
) -> poem::Result<poem::Response> {
    use poem::http::{HeaderValue, header};
    let mut response = match next.call(req).await {
        Ok(response) => poem::IntoResponse::into_response(response),
        Err(err) => err.into_response(),
    };
    let headers = response.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    let html = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("text/html"));
    if html && !headers.contains_key(header::CONTENT_SECURITY_POLICY) {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(DEFAULT_CSP),
        );
    }
    Ok(response)
}

/// The header by which a super admin acts inside another organisation.
pub const ORGANIZATION_HEADER: &str = "x-rollcall-organization";

/// The organisation a request asks to act in: `Ok(None)` without the header, an
/// error naming the header when it is not an id.
pub fn acting_organization(req: &Request) -> Result<Option<uuid::Uuid>, String> {
    req.headers()
        .get(ORGANIZATION_HEADER)
        .map(|value| {
            value
                .to_str()
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .ok_or_else(|| {
                    format!("The {ORGANIZATION_HEADER} header must be an organisation id.")
                })
        })
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::loggable_path;

    #[test]
    fn link_tokens_never_reach_the_log() {
        for (path, logged) in [
            ("/invite/abc123", "/invite/…"),
            ("/reset-password/abc123", "/reset-password/…"),
            ("/p/abc123", "/p/…"),
            ("/graphql", "/graphql"),
            ("/imports/1/failed-rows.csv", "/imports/1/failed-rows.csv"),
        ] {
            assert_eq!(loggable_path(path), logged);
        }
    }
}
