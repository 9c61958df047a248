//! Single sign-on end to end: the test runs a real OpenID provider
//! (`oidc-provider` from npm, `tests/oidc/provider.mjs`) and signs in through
//! it over HTTP as a browser does: Rollcall's start URL, the provider's login
//! and consent pages, the callback, the session cookie. A user is created just
//! in time with the roles their groups map to, and a group removed at the
//! provider removes its role at the next sign-in; signing out there ends the
//! session on every instance. Forged and replayed callbacks, a provider that
//! is not the configured issuer, a domain held by another organisation, and
//! (from a provider the test controls, which signs real tokens) a wrong
//! nonce, issuer or audience and an expired or future ID token are refused.
//! Both backends.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use test_macros::each_backend;

use std::{
    io::{BufRead, BufReader},
    path::PathBuf,
    process::{Child, Command, Stdio},
};

use common::{Backend, PASSWORD, TestApp, error_code};
use serde_json::{Value, json};

/// The identity provider, stopped when dropped.
struct Provider {
    child: Child,
    issuer: String,
    config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// Start oidc-provider with one client, Rollcall at `app`, and `accounts`.
    fn start(app: &TestApp, accounts: Value) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = dir.path().join("provider.json");
        write_config(&config, app, port, accounts);
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/oidc/provider.mjs");
        assert!(
            PathBuf::from(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/tests/oidc/node_modules"
            ))
            .exists(),
            "run `npm ci --prefix tests/oidc` first (.ci/run does)"
        );
        let mut child = Command::new("node")
            .arg(script)
            .arg(&config)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("node runs the identity provider");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("listening"), "{line}");
        Self {
            child,
            issuer: format!("http://127.0.0.1:{port}"),
            config,
            _dir: dir,
        }
    }

    /// Change the accounts the provider knows (read at every sign-in).
    fn set_accounts(&self, app: &TestApp, accounts: Value) {
        let port = self.issuer.rsplit(':').next().unwrap().parse().unwrap();
        write_config(&self.config, app, port, accounts);
    }
}

fn write_config(path: &std::path::Path, app: &TestApp, port: u16, accounts: Value) {
    let config = json!({
        "port": port,
        "clients": [{
            "client_id": "rollcall",
            "client_secret": "provider-secret",
            "redirect_uris": [format!("{}/sso/callback", app.address)],
            "grant_types": ["authorization_code"],
            "response_types": ["code"],
            "backchannel_logout_uri": format!("{}/sso/backchannel-logout", app.address),
        }],
        "accounts": accounts,
    });
    std::fs::write(path, config.to_string()).unwrap();
}

/// A browser: its own cookies, redirects followed by hand so that the test
/// sees where it is sent.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Follow the sign-in from `start` through the provider's login (as
/// `account`) and consent pages, up to the callback into Rollcall; its URL.
async fn sign_in_at_provider(
    browser: &reqwest::Client,
    start: &str,
    account: &str,
    app: &TestApp,
) -> String {
    let callback = format!("{}/sso/callback", app.address);
    let mut url = start.to_owned();
    for _ in 0..20 {
        if url.starts_with(&callback) {
            return url;
        }
        let response = browser.get(&url).send().await.unwrap();
        let base = response.url().clone();
        if response.status().is_redirection() {
            let location = response.headers()["location"].to_str().unwrap();
            url = base.join(location).unwrap().to_string();
            continue;
        }
        let status = response.status();
        let page = response.text().await.unwrap();
        assert_eq!(status, 200, "{url}: {page}");
        // The provider's login or consent form.
        let action = page
            .split("action=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap_or_else(|| panic!("no form at {url}: {page}"));
        // Its hidden fields, and the login a person types.
        let mut form: Vec<(String, String)> = page
            .split("<input type=\"hidden\"")
            .skip(1)
            .filter_map(|input| {
                let attribute = |name: &str| {
                    input
                        .split(&format!("{name}=\""))
                        .nth(1)
                        .and_then(|rest| rest.split('"').next())
                        .map(str::to_owned)
                };
                Some((attribute("name")?, attribute("value")?))
            })
            .collect();
        if page.contains("name=\"login\"") {
            form.push(("login".to_owned(), account.to_owned()));
            form.push(("password".to_owned(), "any".to_owned()));
        }
        let response = browser
            .post(base.join(action).unwrap())
            .form(&form)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_redirection(),
            "{} after {action}: {page}",
            response.status()
        );
        let location = response.headers()["location"].to_str().unwrap();
        url = base.join(location).unwrap().to_string();
    }
    panic!("the sign-in never came back to Rollcall");
}

/// Sign out at the provider as the browser would: its logout page, "yes".
async fn sign_out_at_provider(browser: &reqwest::Client, issuer: &str) {
    let page = browser
        .get(format!("{issuer}/session/end"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let action = page
        .split("action=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no logout form: {page}"));
    let xsrf = page
        .split("name=\"xsrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("no xsrf: {page}"));
    let url = url::Url::parse(issuer).unwrap().join(action).unwrap();
    let response = browser
        .post(url)
        .form(&[("xsrf", xsrf), ("logout", "yes")])
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert!(status.is_redirection() || status.is_success(), "{status}");
}

/// The session a browser holds: `me` and its session's methods.
async fn whoami(browser: &reqwest::Client, app: &TestApp) -> Value {
    browser
        .post(format!("{}/graphql", app.address))
        .json(&json!({ "query": "{ me { email roles { name } } mySessions { current authMethods } }" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn role_names(body: &Value) -> Vec<String> {
    let mut names: Vec<String> = body["data"]["me"]["roles"]
        .as_array()
        .unwrap_or_else(|| panic!("{body}"))
        .iter()
        .map(|r| r["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    names
}

async fn role_id(app: &TestApp, token: &str, name: &str) -> String {
    let roles = app.ok(token, "{ roles { id name } }", json!({})).await;
    roles["roles"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == name)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

const SAVE: &str = "mutation($i: IdentityProviderInput!) { saveIdentityProvider(input: $i) { id loginUrl emailDomains } }";

#[each_backend]
#[tokio::test]
async fn a_browser_signs_in_through_the_identity_provider_and_its_groups_become_roles(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (org, admin) = app.admin_in("Sso Clinic", "admin@clinic.test").await;
    let provider = Provider::start(
        &app,
        json!({ "alice": { "email": "alice@sso.test", "groups": ["nurses", "billing"], "given_name": "Alice", "family_name": "Nightingale" } }),
    );
    let (nurse_role, billing_role) = (
        role_id(&app, &admin, "Provider").await,
        role_id(&app, &admin, "Billing").await,
    );
    let saved = app
        .ok(
            &admin,
            SAVE,
            json!({ "i": {
                "name": "Clinic IdP",
                "issuer": provider.issuer,
                "clientId": "rollcall",
                "clientSecret": "provider-secret",
                "emailDomains": ["SSO.test"],
                "roleMappings": [
                    { "group": "nurses", "roleId": nurse_role },
                    { "group": "billing", "roleId": billing_role },
                ],
                "jitProvisioning": true,
            } }),
        )
        .await;
    let start = saved["saveIdentityProvider"]["loginUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        saved["saveIdentityProvider"]["emailDomains"],
        json!(["sso.test"])
    );

    // The login page asks by domain only.
    let (_, body) = app
        .graphql(
            None,
            "query($e: String!) { ssoLoginUrl(email: $e) }",
            json!({ "e": "anyone@sso.test" }),
        )
        .await;
    assert_eq!(body["data"]["ssoLoginUrl"], start.as_str());
    let (_, body) = app
        .graphql(
            None,
            "query($e: String!) { ssoLoginUrl(email: $e) }",
            json!({ "e": "anyone@elsewhere.test" }),
        )
        .await;
    assert!(body["data"]["ssoLoginUrl"].is_null());

    // First sign-in: the account is made with the mapped roles.
    let alice = browser();
    let callback = sign_in_at_provider(&alice, &start, "alice", &app).await;
    let back = alice.get(&callback).send().await.unwrap();
    assert_eq!(
        back.status(),
        303,
        "{backend:?}: {}",
        back.text().await.unwrap()
    );
    assert_eq!(
        back.headers()["location"],
        format!("{}/", app.address).as_str()
    );
    let me = whoami(&alice, &app).await;
    assert_eq!(me["data"]["me"]["email"], "alice@sso.test", "{me}");
    assert_eq!(role_names(&me), ["Billing", "Provider"]);
    let current = me["data"]["mySessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["current"] == true)
        .unwrap()
        .clone();
    assert_eq!(current["authMethods"], json!(["sso"]));

    // The same callback again, and a made-up one, are refused.
    let replay = browser().get(&callback).send().await.unwrap();
    assert_eq!(replay.status(), 403, "a replayed code");
    let forged = browser()
        .get(format!(
            "{}/sso/callback?code=stolen&state=forged",
            app.address
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403, "a forged state");

    // The provider takes her out of billing: the next sign-in follows.
    provider.set_accounts(
        &app,
        json!({ "alice": { "email": "alice@sso.test", "groups": ["nurses"] } }),
    );
    let again = browser();
    let callback = sign_in_at_provider(&again, &start, "alice", &app).await;
    assert_eq!(again.get(&callback).send().await.unwrap().status(), 303);
    assert_eq!(
        role_names(&whoami(&again, &app).await),
        ["Provider"],
        "{backend:?}"
    );

    // Password logins off for the domain, but for a break-glass address;
    // a wrong password still answers as any wrong password does.
    app.user(org, "bob@sso.test", &["Provider"]).await;
    app.user(org, "carol@sso.test", &["Admin"]).await;
    app.login("bob@sso.test", PASSWORD).await;
    let id = saved["saveIdentityProvider"]["id"].as_str().unwrap();
    app.ok(
        &admin,
        SAVE,
        json!({ "i": {
            "id": id,
            "name": "Clinic IdP",
            "issuer": provider.issuer,
            "clientId": "rollcall",
            "emailDomains": ["sso.test"],
            "roleMappings": [{ "group": "nurses", "roleId": nurse_role }],
            "jitProvisioning": true,
            "required": true,
            "breakGlassEmails": ["Carol@sso.test"],
        } }),
    )
    .await;
    let login = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { token } }";
    let (_, body) = app
        .graphql(None, login, json!({ "e": "bob@sso.test", "p": PASSWORD }))
        .await;
    assert_eq!(error_code(&body), "SSO_REQUIRED", "{backend:?}: {body}");
    let (_, body) = app
        .graphql(
            None,
            login,
            json!({ "e": "bob@sso.test", "p": "Wrong horse 42" }),
        )
        .await;
    assert_eq!(error_code(&body), "UNAUTHENTICATED", "{body}");
    app.login("carol@sso.test", PASSWORD).await;
    app.login("admin@clinic.test", PASSWORD).await;

    let audit = app.audit_actions(org).await;
    for action in [
        "sso.provider_saved",
        "sso.user_provisioned",
        "sso.roles_synced",
    ] {
        assert!(audit.iter().any(|a| a == action), "{action}: {audit:?}");
    }
}

#[each_backend]
#[tokio::test]
async fn a_second_factor_the_provider_verified_meets_the_policy_and_one_it_did_not_does_not(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.admin_in("Strict Clinic", "admin@clinic.test").await;
    // Carol's sign-ins at the provider use a one-time code; Dave's a
    // password alone.
    let provider = Provider::start(
        &app,
        json!({
            "carol": { "email": "carol@sso.test", "amr": ["pwd", "otp"] },
            "dave": { "email": "dave@sso.test" },
        }),
    );
    let start = app
        .ok(
            &admin,
            SAVE,
            json!({ "i": {
                "name": "Clinic IdP",
                "issuer": provider.issuer,
                "clientId": "rollcall",
                "clientSecret": "provider-secret",
                "emailDomains": ["sso.test"],
                "jitProvisioning": true,
            } }),
        )
        .await["saveIdentityProvider"]["loginUrl"]
        .as_str()
        .unwrap()
        .to_owned();
    app.ok(
        &admin,
        "mutation { updateOrganization(input: { mfaRequired: ALL }) { mfaRequired } }",
        json!({}),
    )
    .await;

    let carol = browser();
    let callback = sign_in_at_provider(&carol, &start, "carol", &app).await;
    carol.get(&callback).send().await.unwrap();
    let me = whoami(&carol, &app).await;
    assert_eq!(
        me["data"]["me"]["email"], "carol@sso.test",
        "{backend:?}: {me}"
    );
    assert_eq!(
        me["data"]["mySessions"][0]["authMethods"],
        json!(["sso", "mfa"]),
        "{me}"
    );

    let dave = browser();
    let callback = sign_in_at_provider(&dave, &start, "dave", &app).await;
    dave.get(&callback).send().await.unwrap();
    let me = whoami(&dave, &app).await;
    assert_eq!(
        error_code(&me),
        "MFA_ENROLLMENT_REQUIRED",
        "{backend:?}: {me}"
    );
}

#[tokio::test]
async fn a_provider_that_is_not_the_configured_issuer_and_a_domain_of_another_organisation_are_refused()
 {
    for backend in common::backends().await {
        let app = TestApp::spawn(backend).await;
        let org = app.organization("Careful Clinic").await;
        let other = app.organization("Other Clinic").await;
        app.user(org, "admin@careful.test", &["Admin"]).await;
        app.user(other, "carol@other-clinic.test", &["Provider"])
            .await;
        let admin = app.login("admin@careful.test", PASSWORD).await;
        let provider = Provider::start(&app, json!({}));

        let input = |issuer: &str, domain: &str| {
            json!({ "i": {
                "name": "IdP",
                "issuer": issuer,
                "clientId": "rollcall",
                "clientSecret": "provider-secret",
                "emailDomains": [domain],
            } })
        };
        let (_, body) = app
            .graphql(
                Some(&admin),
                SAVE,
                input(&provider.issuer, "other-clinic.test"),
            )
            .await;
        assert_eq!(error_code(&body), "CONFLICT", "{backend:?}: {body}");

        // The provider announces itself as 127.0.0.1; configured as localhost
        // it is not the issuer it claims, and nobody signs in through it.
        let lookalike = provider.issuer.replace("127.0.0.1", "localhost");
        let saved = app
            .ok(&admin, SAVE, input(&lookalike, "careful.test"))
            .await;
        let start = saved["saveIdentityProvider"]["loginUrl"].as_str().unwrap();
        let response = browser().get(start).send().await.unwrap();
        assert_eq!(response.status(), 403, "{backend:?}");

        // A plain user may not see or change identity providers.
        app.user(org, "nurse@careful.test", &["Provider"]).await;
        let nurse = app.login("nurse@careful.test", PASSWORD).await;
        let (_, body) = app
            .graphql(Some(&nurse), "{ identityProviders { id } }", json!({}))
            .await;
        assert_eq!(error_code(&body), "FORBIDDEN");
    }
}

#[each_backend]
#[tokio::test]
async fn signing_out_at_the_identity_provider_ends_the_session_on_every_instance(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let peer = app.peer().await;
    let (org, admin) = app
        .admin_in("Logout Clinic", "admin@logout-clinic.test")
        .await;
    let provider = Provider::start(
        &app,
        json!({ "dana": { "email": "dana@logout.test", "groups": [] } }),
    );
    let saved = app
        .ok(
            &admin,
            SAVE,
            json!({ "i": {
                "name": "IdP",
                "issuer": provider.issuer,
                "clientId": "rollcall",
                "clientSecret": "provider-secret",
                "emailDomains": ["logout.test"],
                "jitProvisioning": true,
            } }),
        )
        .await;
    let start = saved["saveIdentityProvider"]["loginUrl"].as_str().unwrap();
    let dana = browser();
    let callback = sign_in_at_provider(&dana, start, "dana", &app).await;
    let signed_in = dana.get(&callback).send().await.unwrap();
    assert_eq!(signed_in.status(), 303);
    // The session token, as the cookie carries it: a socket opens with it
    // on the other instance and watches the session.
    let token = signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| {
            c.split(';')
                .next()?
                .split_once('=')
                .map(|(_, v)| v.to_owned())
        })
        .filter(|v| !v.is_empty())
        .unwrap();
    let instances: Vec<&TestApp> = std::iter::once(&app).chain(peer.as_ref()).collect();
    let mut socket = watch_session(instances[instances.len() - 1], &token).await;
    for instance in &instances {
        let me = whoami(&dana, instance).await;
        assert_eq!(me["data"]["me"]["email"], "dana@logout.test", "{me}");
    }

    // Tokens the provider did not sign end nothing: unsigned, or with a
    // made-up signature, though they name the provider and the subject.
    let part = |value: Value| base64_url(value.to_string().as_bytes());
    let claims = part(json!({
        "iss": provider.issuer,
        "aud": "rollcall",
        "iat": chrono::Utc::now().timestamp(),
        "jti": "forged",
        "sub": "dana",
        "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
    }));
    for forged in [
        format!("{}.{claims}.", part(json!({ "alg": "none" }))),
        format!(
            "{}.{claims}.{}",
            part(json!({ "alg": "RS256" })),
            base64_url(&[7; 256])
        ),
    ] {
        let answer = app
            .client
            .post(format!("{}/sso/backchannel-logout", app.address))
            .form(&[("logout_token", forged)])
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 400, "{backend:?}");
    }
    assert_eq!(
        whoami(&dana, &app).await["data"]["me"]["email"],
        "dana@logout.test"
    );

    sign_out_at_provider(&dana, &provider.issuer).await;
    for instance in &instances {
        let mut ended = false;
        for _ in 0..50 {
            let me = whoami(&dana, instance).await;
            if error_code(&me) == "UNAUTHENTICATED" {
                ended = true;
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        assert!(
            ended,
            "{backend:?}: the session outlived the provider's logout"
        );
    }
    // The open subscription hears of it and the socket closes.
    let heard = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        use futures_util::StreamExt;
        while let Some(Ok(message)) = socket.next().await {
            if let tokio_tungstenite::tungstenite::Message::Text(text) = &message
                && text.contains("REVOKED")
            {
                return;
            }
        }
    })
    .await;
    assert!(
        heard.is_ok(),
        "{backend:?}: the subscription outlived the logout"
    );
    assert!(
        app.audit_actions(org)
            .await
            .iter()
            .any(|a| a == "sso.backchannel_logout")
    );
}

/// A `graphql-transport-ws` socket on `app` with `sessionEvents` subscribed.
async fn watch_session(
    app: &TestApp,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use futures_util::{SinkExt, StreamExt};
    use tokio_tungstenite::tungstenite::{Message, client::IntoClientRequest, http::HeaderValue};
    let mut request = app.ws_url().into_client_request().unwrap();
    request.headers_mut().insert(
        "Sec-WebSocket-Protocol",
        HeaderValue::from_static("graphql-transport-ws"),
    );
    let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    socket
        .send(Message::text(
            json!({ "type": "connection_init", "payload": { "token": token } }).to_string(),
        ))
        .await
        .unwrap();
    let ack = socket.next().await.unwrap().unwrap();
    assert!(ack.to_text().unwrap().contains("connection_ack"), "{ack:?}");
    socket
        .send(Message::text(
            json!({ "id": "1", "type": "subscribe", "payload": { "query": "subscription { sessionEvents { kind } }" } })
                .to_string(),
        ))
        .await
        .unwrap();
    socket
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What a misbehaving provider gets wrong in the ID token it signs.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Flaw {
    None,
    WrongNonce,
    Expired,
    NotYetValid,
    WrongIssuer,
    WrongAudience,
}

/// A provider the test controls, for what a certified one never sends: it
/// publishes a real key and signs real tokens (ES256), with the chosen flaw.
struct FakeProvider {
    issuer: String,
    flaw: std::sync::Arc<std::sync::Mutex<Flaw>>,
    _server: tokio::task::JoinHandle<()>,
}

impl FakeProvider {
    async fn start() -> Self {
        use p256::ecdsa::{SigningKey, signature::Signer};
        use poem::{
            EndpointExt, Route, get, handler, post,
            web::{Data, Json, Query, Redirect},
        };
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let issuer = format!("http://{}", listener.local_addr().unwrap());
        drop(listener);
        let key = SigningKey::from_slice(&[0x17; 32]).unwrap();
        let point = key.verifying_key().to_sec1_point(false);
        let (x, y) = (&point.as_bytes()[1..33], &point.as_bytes()[33..65]);
        let jwks = json!({ "keys": [{
            "kty": "EC", "crv": "P-256", "kid": "k1", "use": "sig", "alg": "ES256",
            "x": base64_url(x), "y": base64_url(y),
        }] });
        let flaw = std::sync::Arc::new(std::sync::Mutex::new(Flaw::None));
        let nonce = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
        #[derive(Clone)]
        struct Shared {
            issuer: String,
            key: SigningKey,
            jwks: Value,
            flaw: std::sync::Arc<std::sync::Mutex<Flaw>>,
            nonce: std::sync::Arc<std::sync::Mutex<String>>,
        }
        #[handler]
        fn discovery(shared: Data<&Shared>) -> Json<Value> {
            let issuer = &shared.issuer;
            Json(json!({
                "issuer": issuer,
                "authorization_endpoint": format!("{issuer}/auth"),
                "token_endpoint": format!("{issuer}/token"),
                "jwks_uri": format!("{issuer}/jwks"),
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
            }))
        }
        #[handler]
        fn keys(shared: Data<&Shared>) -> Json<Value> {
            Json(shared.jwks.clone())
        }
        #[handler]
        fn authorize(
            shared: Data<&Shared>,
            Query(query): Query<std::collections::HashMap<String, String>>,
        ) -> Redirect {
            *shared.nonce.lock().unwrap() = query["nonce"].clone();
            Redirect::see_other(format!(
                "{}?code=fake-code&state={}",
                query["redirect_uri"], query["state"]
            ))
        }
        #[handler]
        fn token(shared: Data<&Shared>) -> Json<Value> {
            let flaw = *shared.flaw.lock().unwrap();
            let now = chrono::Utc::now().timestamp();
            let (iat, exp) = match flaw {
                Flaw::Expired => (now - 7200, now - 3600),
                Flaw::NotYetValid => (now + 3600, now + 7200),
                _ => (now, now + 600),
            };
            let claims = json!({
                "iss": if flaw == Flaw::WrongIssuer { "http://issuer.invalid".to_owned() } else { shared.issuer.clone() },
                "aud": if flaw == Flaw::WrongAudience { "someone-else" } else { "rollcall" },
                "sub": "fake-subject",
                "email": "erin@fake.test",
                "email_verified": true,
                "nonce": if flaw == Flaw::WrongNonce { "not-the-nonce".to_owned() } else { shared.nonce.lock().unwrap().clone() },
                "iat": iat,
                "exp": exp,
            });
            let header = base64_url(
                json!({ "alg": "ES256", "kid": "k1", "typ": "JWT" })
                    .to_string()
                    .as_bytes(),
            );
            let body = base64_url(claims.to_string().as_bytes());
            let signature: p256::ecdsa::Signature =
                shared.key.sign(format!("{header}.{body}").as_bytes());
            Json(json!({
                "access_token": "fake-access",
                "token_type": "Bearer",
                "expires_in": 600,
                "id_token": format!("{header}.{body}.{}", base64_url(&signature.to_bytes())),
            }))
        }
        let shared = Shared {
            issuer: issuer.clone(),
            key,
            jwks,
            flaw: flaw.clone(),
            nonce,
        };
        let app = Route::new()
            .at("/.well-known/openid-configuration", get(discovery))
            .at("/jwks", get(keys))
            .at("/auth", get(authorize))
            .at("/token", post(token))
            .data(shared);
        let address = issuer.trim_start_matches("http://").to_owned();
        let server = tokio::spawn(async move {
            let _ = poem::Server::new(poem::listener::TcpListener::bind(address))
                .run(app)
                .await;
        });
        // Wait until it answers.
        for _ in 0..50 {
            if reqwest::get(format!("{issuer}/jwks")).await.is_ok() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        Self {
            issuer,
            flaw,
            _server: server,
        }
    }
}

#[each_backend]
#[tokio::test]
async fn id_tokens_with_a_wrong_nonce_issuer_audience_or_time_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (_, admin) = app.admin_in("Strict Clinic", "admin@strict.test").await;
    let provider = FakeProvider::start().await;
    let saved = app
        .ok(
            &admin,
            SAVE,
            json!({ "i": {
                "name": "Fake",
                "issuer": provider.issuer,
                "clientId": "rollcall",
                "clientSecret": "fake-secret",
                "emailDomains": ["fake.test"],
                "jitProvisioning": true,
            } }),
        )
        .await;
    let start = saved["saveIdentityProvider"]["loginUrl"].as_str().unwrap();
    let sign_in = |flaw| {
        *provider.flaw.lock().unwrap() = flaw;
        async move {
            let browser = browser();
            let to_provider = browser.get(start).send().await.unwrap();
            let authorize = to_provider.headers()["location"]
                .to_str()
                .unwrap()
                .to_owned();
            let back = browser.get(&authorize).send().await.unwrap();
            let callback = back.headers()["location"].to_str().unwrap().to_owned();
            browser
                .get(&callback)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for flaw in [
        Flaw::WrongNonce,
        Flaw::Expired,
        Flaw::NotYetValid,
        Flaw::WrongIssuer,
        Flaw::WrongAudience,
    ] {
        assert_eq!(sign_in(flaw).await, 403, "{backend:?}: {flaw:?}");
    }
    // The same provider, telling the truth, signs in.
    assert_eq!(sign_in(Flaw::None).await, 303, "{backend:?}");
}
