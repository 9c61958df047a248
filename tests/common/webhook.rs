//! A small HTTP endpoint for tests: it keeps every JSON body POSTed to it, so a
//! test can read the text messages Rollcall sent. It refuses (HTTP 422) any
//! message to a number listed in `refuse`, as a gateway refuses a bad number.

use std::sync::{Arc, Mutex};

use poem::{
    EndpointExt, Route, handler,
    http::StatusCode,
    listener::{Acceptor, Listener, TcpListener},
    post,
    web::{Data, Json},
};
use serde_json::Value;

#[derive(Clone, Default)]
struct Shared {
    received: Arc<Mutex<Vec<Value>>>,
    refuse: Arc<Vec<String>>,
}

pub struct WebhookSink {
    pub port: u16,
    received: Arc<Mutex<Vec<Value>>>,
    task: tokio::task::JoinHandle<()>,
}

#[handler]
async fn receive(Json(body): Json<Value>, shared: Data<&Shared>) -> StatusCode {
    let refused = body["to"]
        .as_str()
        .is_some_and(|to| shared.refuse.iter().any(|r| r == to));
    if refused {
        return StatusCode::UNPROCESSABLE_ENTITY;
    }
    shared.received.lock().unwrap().push(body);
    StatusCode::ACCEPTED
}

impl WebhookSink {
    pub async fn start(refuse: &[&str]) -> Self {
        let shared = Shared {
            received: Arc::default(),
            refuse: Arc::new(refuse.iter().map(|s| (*s).to_owned()).collect()),
        };
        let acceptor = TcpListener::bind("127.0.0.1:0")
            .into_acceptor()
            .await
            .unwrap();
        let port = acceptor.local_addr()[0]
            .as_socket_addr()
            .map(std::net::SocketAddr::port)
            .unwrap();
        let received = shared.received.clone();
        let app = Route::new().at("/sms", post(receive)).data(shared);
        let task = tokio::spawn(async move {
            let _ = poem::Server::new_with_acceptor(acceptor).run(app).await;
        });
        Self {
            port,
            received,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/sms", self.port)
    }

    pub fn received(&self) -> Vec<Value> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for WebhookSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}
