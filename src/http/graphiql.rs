//! The GraphiQL explorer, with its scripts and styles served by Rollcall itself so
//! that it works on networks without internet access.

use poem::{
    IntoResponse, Response, handler,
    http::{StatusCode, header},
    web::Path,
};

const PAGE: &str = r#"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Rollcall GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/graphiql/assets/graphiql.min.css">
<style>body { margin: 0; height: 100vh; } #graphiql { height: 100vh; }</style>
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="/graphiql/assets/react.production.min.js"></script>
<script src="/graphiql/assets/react-dom.production.min.js"></script>
<script src="/graphiql/assets/graphiql.min.js"></script>
<script src="/graphiql/assets/start.js"></script>
</body>
</html>
"#;

// Same origin, so the session cookie travels; `include` keeps it on redirects too.
const START: &str = r#"
const fetcher = GraphiQL.createFetcher({
  url: window.location.origin + '/graphql',
  headers: { 'x-rollcall-csrf': '1' },
  fetch: (input, init) => fetch(input, Object.assign({}, init, { credentials: 'same-origin' })),
});
ReactDOM.createRoot(document.getElementById('graphiql')).render(
  React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: '# Log in first:\n# mutation { login(email: "…", password: "…") { user { email } mustChangePassword } }\n\nquery Me {\n  me { id email firstName lastName roles { name } }\n}\n',
  }),
);
"#;

pub fn page() -> Response {
    Response::builder()
        .content_type("text/html; charset=utf-8")
        .header(
            "Content-Security-Policy",
            // GraphiQL's stylesheet carries its fonts as data: URLs.
            "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; frame-ancestors 'none'; base-uri 'none'",
        )
        .header("X-Frame-Options", "DENY")
        .body(PAGE)
}

#[handler]
pub fn asset(Path(name): Path<String>) -> Response {
    let (body, content_type): (&'static [u8], &str) = match name.as_str() {
        "graphiql.min.css" => (
            include_bytes!("../../assets/graphiql/graphiql.min.css"),
            "text/css",
        ),
        "graphiql.min.js" => (
            include_bytes!("../../assets/graphiql/graphiql.min.js"),
            "text/javascript",
        ),
        "react.production.min.js" => (
            include_bytes!("../../assets/graphiql/react.production.min.js"),
            "text/javascript",
        ),
        "react-dom.production.min.js" => (
            include_bytes!("../../assets/graphiql/react-dom.production.min.js"),
            "text/javascript",
        ),
        "start.js" => (START.as_bytes(), "text/javascript"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    Response::builder()
        .content_type(content_type)
        .header(header::CACHE_CONTROL, "public, max-age=86400")
        .body(body)
}
