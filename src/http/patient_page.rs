//! The page a project link opens, and the project's QR code.
//!
//! `GET /p/{token}` serves a small form that works without JavaScript: on a
//! generic link, first name, last name, email or phone, and consent; on a unique
//! link, consent only. `POST /p/{token}` records the response. An unknown,
//! rotated or forged token gets a plain 404 and enrols no one. Like invite
//! pages, these never leak the token onward (no referrer, no caching, redacted
//! from request logs), and responses are rate limited per IP address.

use std::time::Duration;

use poem::{
    Request, Response, handler,
    http::{StatusCode, header},
    web::{Data, Form, Path},
};
use qrcode::{QrCode, render::svg};
use serde::Deserialize;

use super::{
    downloads::{caller, refused},
    invite::{escape, page, unavailable},
    origin_of,
};
use crate::{
    error::AppError,
    services::{
        patients::{self, Response as PatientResponse},
        projects,
    },
    state::AppState,
};

/// Responses one IP address may submit per window: a waiting room behind one
/// address still fits, a script filling the project with fake patients does not.
const RESPONSES_PER_IP: u64 = 60;
const RESPONSE_WINDOW: Duration = Duration::from_secs(10 * 60);

/// What a link opens.
enum Link {
    Generic(entity::project::Model),
    Unique(entity::patient_link::Model, entity::project::Model),
}

async fn resolve(state: &AppState, token: &str) -> Result<Option<Link>, AppError> {
    if let Some(project) = projects::by_link_token(&state.db, token).await? {
        return Ok(Some(Link::Generic(project)));
    }
    Ok(projects::by_unique_token(&state.db, token)
        .await?
        .map(|(link, project)| Link::Unique(link, project)))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
pub struct Submitted {
    first_name: Option<String>,
    last_name: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    consent: Option<String>,
}

#[handler]
pub async fn show(Path(token): Path<String>, state: Data<&AppState>) -> Response {
    match resolve(&state, &token).await {
        Ok(Some(link)) => page(StatusCode::OK, &form(&link, &Submitted::default(), &[])),
        Ok(None) => not_found(),
        Err(_) => unavailable(),
    }
}

#[handler]
pub async fn submit(
    req: &Request,
    Path(token): Path<String>,
    state: Data<&AppState>,
    Form(input): Form<Submitted>,
) -> Response {
    let link = match resolve(&state, &token).await {
        Ok(Some(link)) => link,
        Ok(None) => return not_found(),
        Err(_) => return unavailable(),
    };
    let origin = origin_of(req);
    let ip = origin.ip_address.clone().unwrap_or_default();
    match state
        .auth
        .store()
        .record_failure(
            &format!("patient-response:ip:{ip}"),
            RESPONSES_PER_IP,
            RESPONSE_WINDOW,
        )
        .await
    {
        Ok(attempts) if attempts.count > RESPONSES_PER_IP => {
            return page(
                StatusCode::TOO_MANY_REQUESTS,
                "<h1>Please try again later</h1><p>Too many responses came from this network just now.</p>",
            );
        }
        Ok(_) => {}
        Err(_) => return unavailable(),
    }
    let consent = input.consent.as_deref() == Some("yes");
    let recorded = match &link {
        Link::Generic(project) => {
            patients::respond_generic(
                &state.db,
                project,
                &PatientResponse {
                    first_name: input.first_name.as_deref(),
                    last_name: input.last_name.as_deref(),
                    email: input.email.as_deref(),
                    phone: input.phone.as_deref(),
                    consent,
                },
                &origin,
            )
            .await
        }
        Link::Unique(patient_link, project) => {
            patients::respond_unique(&state.db, patient_link, project, consent, &origin).await
        }
    };
    match recorded {
        Ok(_) => {
            let project = match &link {
                Link::Generic(p) | Link::Unique(_, p) => p,
            };
            page(
                StatusCode::OK,
                &format!(
                    "<h1>Thank you</h1><p role=\"status\">Your response to <strong>{}</strong> is recorded. You can close this page.</p>",
                    escape(&project.name)
                ),
            )
        }
        Err(AppError::BadInput(errors)) => {
            let reasons: Vec<String> = errors
                .iter()
                .map(|e| format!("{}: {}", label(&e.field), e.message))
                .collect();
            page(
                StatusCode::UNPROCESSABLE_ENTITY,
                &form(&link, &input, &reasons),
            )
        }
        Err(_) => unavailable(),
    }
}

/// The project's generic link as an SVG QR code, for its organisation's users.
#[handler]
pub async fn qr_code(req: &Request, Path(id): Path<String>, state: Data<&AppState>) -> Response {
    let result = async {
        let actor = caller(req, &state).await?;
        let id = id.parse().map_err(|_| AppError::NotFound("Project"))?;
        projects::find(&state.db, &actor, id).await
    }
    .await;
    let project = match result {
        Ok(project) => project,
        Err(err) => return refused(err),
    };
    let link = format!("{}/p/{}", state.public_url, project.link_token);
    let Ok(code) = QrCode::new(link.as_bytes()) else {
        return refused(AppError::Internal(anyhow::anyhow!(
            "the project link does not fit a QR code"
        )));
    };
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(256, 256)
        .quiet_zone(true)
        .build();
    Response::builder()
        .status(StatusCode::OK)
        .content_type("image/svg+xml")
        .header(header::CACHE_CONTROL, "private, no-store")
        .header("x-content-type-options", "nosniff")
        .header(
            header::CONTENT_DISPOSITION,
            "inline; filename=\"project-link.svg\"",
        )
        .body(image)
}

fn label(field: &str) -> &str {
    match field {
        "firstName" => "First name",
        "lastName" => "Last name",
        "email" => "Email",
        "phone" => "Phone",
        "consent" => "Consent",
        other => other,
    }
}

fn form(link: &Link, input: &Submitted, reasons: &[String]) -> String {
    let project = match link {
        Link::Generic(p) | Link::Unique(_, p) => p,
    };
    let errors = if reasons.is_empty() {
        String::new()
    } else {
        let items: String = reasons
            .iter()
            .map(|r| format!("<li>{}</li>", escape(r)))
            .collect();
        format!(r#"<div class="error" role="alert"><p>Please check:</p><ul>{items}</ul></div>"#)
    };
    let description = project
        .description
        .as_deref()
        .map(|d| format!("<p>{}</p>", escape(d)))
        .unwrap_or_default();
    let value = |v: &Option<String>| escape(v.as_deref().unwrap_or(""));
    let fields = match link {
        Link::Generic(_) => format!(
            r#"  <label for="firstName">First name</label>
  <input id="firstName" name="firstName" autocomplete="given-name" required maxlength="100" value="{first}">
  <label for="lastName">Last name</label>
  <input id="lastName" name="lastName" autocomplete="family-name" required maxlength="100" value="{last}">
  <p id="contact-hint">An email address or a phone number, so that we can reach you.</p>
  <label for="email">Email</label>
  <input id="email" name="email" type="email" autocomplete="email" maxlength="254" aria-describedby="contact-hint" value="{email}">
  <label for="phone">Phone</label>
  <input id="phone" name="phone" type="tel" autocomplete="tel" maxlength="30" aria-describedby="contact-hint" value="{phone}">
"#,
            first = value(&input.first_name),
            last = value(&input.last_name),
            email = value(&input.email),
            phone = value(&input.phone),
        ),
        Link::Unique(..) => String::new(),
    };
    format!(
        r#"<h1>{name}</h1>
{description}
{errors}
<form method="post">
{fields}  <p><input id="consent" name="consent" type="checkbox" value="yes" required style="display:inline;width:auto">
  <label for="consent" style="display:inline">I agree to take part and to be contacted about this project.</label></p>
  <button type="submit">Send my response</button>
</form>"#,
        name = escape(&project.name),
    )
}

fn not_found() -> Response {
    page(
        StatusCode::NOT_FOUND,
        "<h1>This link does not work</h1><p>Check that you copied the whole link, or ask whoever sent it for a new one.</p>",
    )
}
