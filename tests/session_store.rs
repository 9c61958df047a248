//! One conformance suite for both session stores: what the memory store does, the
//! Redis store does too.

#![allow(
    clippy::unwrap_used,
    reason = "a test fails loudly on what it did not expect"
)]

mod common;

use std::{sync::Arc, time::Duration};

use rollcall::auth::session::{
    AuthMethod, EndReason, NewSession, SessionStore, StoreEvent, memory::MemoryStore,
    redis::RedisStore, wait_for_end,
};
use uuid::Uuid;

/// The stores to check, and the Redis storage to remove afterwards.
async fn stores() -> (Vec<Arc<dyn SessionStore>>, Option<Arc<common::Storage>>) {
    let mut stores: Vec<Arc<dyn SessionStore>> = vec![Arc::new(MemoryStore::default())];
    let mut storage = None;
    if common::backends()
        .await
        .contains(&common::Backend::Production)
    {
        let redis = common::Storage::redis_only().await;
        let url = redis.redis_url.clone().unwrap();
        stores.push(Arc::new(
            RedisStore::connect(&url, &redis.redis_prefix, Duration::from_secs(2))
                .await
                .unwrap(),
        ));
        storage = Some(redis);
    }
    (stores, storage)
}

fn new_session(user: Uuid, org: Uuid, idle: Duration) -> NewSession {
    NewSession {
        user_id: user,
        organization_id: org,
        idle_timeout: idle,
        max_lifetime: Duration::from_secs(3600),
        ip_address: Some("10.0.0.7".to_owned()),
        user_agent: Some("conformance".to_owned()),
        auth_methods: vec![AuthMethod::Password],
        mfa_pending: false,
        mfa_verified: false,
    }
}

#[tokio::test]
async fn sessions_are_created_touched_listed_and_revoked() {
    let (stores, _cleanup) = stores().await;
    for store in stores {
        let (user, org) = (Uuid::now_v7(), Uuid::now_v7());
        let (token, created) = store
            .create(new_session(user, org, Duration::from_secs(600)))
            .await
            .unwrap();
        assert_eq!(created.id, token.id());

        let touched = store
            .touch(&token.id())
            .await
            .unwrap()
            .expect("live session");
        assert_eq!(
            (touched.session.user_id, touched.session.organization_id),
            (user, org)
        );
        assert!(touched.session.last_seen_at >= created.created_at);
        let stored = store.get(&token.id()).await.unwrap().unwrap();
        assert_eq!(
            (stored.ip_address.as_deref(), stored.user_agent.as_deref()),
            (Some("10.0.0.7"), Some("conformance")),
            "{}",
            store.kind()
        );
        let epoch = touched.authz_epoch.clone();
        assert!(!epoch.is_empty());
        assert_eq!(
            store.touch(&token.id()).await.unwrap().unwrap().authz_epoch,
            epoch,
            "{}",
            store.kind()
        );
        store.bump_authz_epoch(org).await.unwrap();
        assert_ne!(
            store.touch(&token.id()).await.unwrap().unwrap().authz_epoch,
            epoch,
            "{}",
            store.kind()
        );

        let (second, _) = store
            .create(new_session(user, org, Duration::from_secs(600)))
            .await
            .unwrap();
        assert_eq!(store.list_for_user(user).await.unwrap().len(), 2);

        let mut events = store.subscribe();
        assert!(store.revoke(&token.id()).await.unwrap());
        assert!(
            !store.revoke(&token.id()).await.unwrap(),
            "revoking twice reports nothing ended"
        );
        assert!(store.touch(&token.id()).await.unwrap().is_none());
        let event = tokio::time::timeout(Duration::from_secs(1), events.recv())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(event, StoreEvent::Revoked(token.id()), "{}", store.kind());

        let (third, _) = store
            .create(new_session(user, org, Duration::from_secs(600)))
            .await
            .unwrap();
        assert_eq!(store.revoke_user(user, Some(&third.id())).await.unwrap(), 1);
        assert!(store.touch(&second.id()).await.unwrap().is_none());
        assert!(
            store.touch(&third.id()).await.unwrap().is_some(),
            "the kept session survives"
        );
    }
}

/// The idle timeout of the expiry test: its steps of half of it leave the
/// other half to a loaded machine's scheduling before the check would fail.
const IDLE: Duration = Duration::from_millis(1600);

#[tokio::test]
async fn a_pending_login_and_a_verified_second_factor_are_remembered() {
    let (stores, _cleanup) = stores().await;
    for store in stores {
        let (user, org) = (Uuid::now_v7(), Uuid::now_v7());
        let pending = NewSession {
            mfa_pending: true,
            ..new_session(user, org, Duration::from_secs(300))
        };
        let (token, created) = store.create(pending).await.unwrap();
        assert!(created.mfa_pending, "{}", store.kind());
        assert_eq!(created.mfa_verified_at, None);
        let touched = store.touch(&token.id()).await.unwrap().expect("live");
        assert!(touched.session.mfa_pending, "{}", store.kind());
        assert_eq!(touched.session.auth_methods, [AuthMethod::Password]);

        let (token, _) = store
            .create(new_session(user, org, Duration::from_secs(300)))
            .await
            .unwrap();
        let before = chrono::Utc::now() - chrono::Duration::seconds(1);
        let stepped = store
            .record_second_factor(&token.id(), AuthMethod::Otp)
            .await
            .unwrap()
            .expect("live");
        assert_eq!(
            stepped.auth_methods,
            [AuthMethod::Password, AuthMethod::Otp]
        );
        // Verifying again adds no second mention of the method.
        store
            .record_second_factor(&token.id(), AuthMethod::Otp)
            .await
            .unwrap();
        let touched = store.touch(&token.id()).await.unwrap().expect("live");
        assert!(!touched.session.mfa_pending);
        assert_eq!(
            touched.session.auth_methods,
            [AuthMethod::Password, AuthMethod::Otp],
            "{}",
            store.kind()
        );
        assert!(touched.session.mfa_verified_at.expect("verified") >= before);

        store.revoke(&token.id()).await.unwrap();
        assert!(
            store
                .record_second_factor(&token.id(), AuthMethod::Otp)
                .await
                .unwrap()
                .is_none()
        );
    }
}

#[tokio::test]
async fn an_idle_session_expires_and_its_watchers_hear_so() {
    let (stores, _cleanup) = stores().await;
    for store in stores {
        let (token, _) = store
            .create(new_session(Uuid::now_v7(), Uuid::now_v7(), IDLE))
            .await
            .unwrap();
        let watcher = tokio::spawn(wait_for_end(store.clone(), token.id()));
        tokio::time::sleep(IDLE / 2).await;
        assert!(
            store.touch(&token.id()).await.unwrap().is_some(),
            "activity slides the window"
        );
        tokio::time::sleep(IDLE / 2).await;
        assert!(
            store.get(&token.id()).await.unwrap().is_some(),
            "{}: still inside the slid window",
            store.kind()
        );
        let reason = tokio::time::timeout(Duration::from_secs(3), watcher)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reason, EndReason::Expired, "{}", store.kind());
        assert!(store.touch(&token.id()).await.unwrap().is_none());
    }
}

#[tokio::test]
async fn failures_are_counted_locked_and_cleared() {
    let (stores, _cleanup) = stores().await;
    for store in stores {
        let key = format!("email:{}", Uuid::new_v4());
        let window = Duration::from_secs(900);
        for expected in 1..=3 {
            let attempts = store.record_failure(&key, 3, window).await.unwrap();
            assert_eq!(attempts.count, expected);
        }
        let now = store.failures(std::slice::from_ref(&key)).await.unwrap();
        assert_eq!(now[0].count, 3);
        assert!(
            now[0].retry_after > Duration::from_secs(890),
            "{}",
            store.kind()
        );
        store.clear_failures(&key).await.unwrap();
        assert_eq!(store.failures(&[key]).await.unwrap()[0].count, 0);
    }
}

/// Many requests at once, some with ended sessions: each gets its own answer
/// (the Redis store checks sessions arriving together in one call).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_checks_each_get_their_own_answer() {
    let (stores, _cleanup) = stores().await;
    for store in stores {
        let mut sessions = Vec::new();
        for i in 0..60 {
            let user = Uuid::now_v7();
            let (token, _) = store
                .create(new_session(user, Uuid::now_v7(), Duration::from_secs(600)))
                .await
                .unwrap();
            let live = i % 3 != 0;
            if !live {
                store.revoke(&token.id()).await.unwrap();
            }
            sessions.push((token.id(), user, live));
        }
        for _ in 0..3 {
            let checks = sessions.iter().map(|(id, _, _)| {
                let store = store.clone();
                let id = id.clone();
                tokio::spawn(async move { store.touch(&id).await.unwrap() })
            });
            let answers = futures_util::future::join_all(checks).await;
            for ((_, user, live), answer) in sessions.iter().zip(answers) {
                let answer = answer.unwrap();
                assert_eq!(answer.is_some(), *live, "{}", store.kind());
                if let Some(touched) = answer {
                    assert_eq!(touched.session.user_id, *user, "{}", store.kind());
                    assert!(!touched.authz_epoch.is_empty());
                }
            }
        }
    }
}

/// A session checked again (the Redis store reads it then without its
/// script) still slides, ends when idle, shows a second factor verified since
/// and a replaced epoch, and gets a new epoch when Redis lost its own.
#[tokio::test]
async fn a_session_checked_again_slides_ends_and_shows_what_changed() {
    let (stores, storage) = stores().await;
    for store in stores {
        let kind = store.kind();
        let (user, org) = (Uuid::now_v7(), Uuid::now_v7());
        let (token, _) = store.create(new_session(user, org, IDLE)).await.unwrap();
        let id = token.id();
        let first = store.touch(&id).await.unwrap().expect("live");
        let again = store.touch(&id).await.unwrap().expect("live");
        assert_eq!(
            (again.session.user_id, again.session.organization_id),
            (user, org)
        );
        assert_eq!(again.authz_epoch, first.authz_epoch, "{kind}");

        tokio::time::sleep(IDLE / 2).await;
        let slid = store.touch(&id).await.unwrap().expect("live");
        assert!(
            slid.session.last_seen_at > first.session.last_seen_at,
            "{kind}: a check after a tenth of the window slides it"
        );
        tokio::time::sleep(IDLE / 2).await;
        let within = store.touch(&id).await.unwrap();
        assert!(within.is_some(), "{kind}: still inside the slid window");

        store
            .record_second_factor(&id, AuthMethod::Otp)
            .await
            .unwrap()
            .expect("live");
        let stepped = store.touch(&id).await.unwrap().expect("live");
        assert_eq!(
            stepped.session.auth_methods,
            [AuthMethod::Password, AuthMethod::Otp],
            "{kind}"
        );
        assert!(stepped.session.mfa_verified_at.is_some(), "{kind}");
        store.bump_user_epoch(user).await.unwrap();
        let bumped = store.touch(&id).await.unwrap().expect("live").authz_epoch;
        assert_ne!(bumped, first.authz_epoch, "{kind}");

        if let Some(storage) = &storage
            && kind == "redis"
        {
            let client = redis::Client::open(storage.redis_url.clone().unwrap()).unwrap();
            let mut connection = client.get_multiplexed_async_connection().await.unwrap();
            let lost = format!("{}authz:{org}", storage.redis_prefix);
            redis::cmd("DEL")
                .arg(&lost)
                .query_async::<()>(&mut connection)
                .await
                .unwrap();
            let renewed = store.touch(&id).await.unwrap().expect("live").authz_epoch;
            assert_ne!(renewed, bumped, "a lost epoch is made anew");
            let stored: Option<String> = redis::cmd("GET")
                .arg(&lost)
                .query_async(&mut connection)
                .await
                .unwrap();
            assert!(stored.is_some_and(|epoch| renewed.starts_with(&epoch)));

            // A session stored before sessions had a check string is checked
            // all the same, and gets one.
            let key = format!("{}s:{}", storage.redis_prefix, id.0);
            redis::cmd("HDEL")
                .arg(&key)
                .arg("chk")
                .query_async::<()>(&mut connection)
                .await
                .unwrap();
            let older = store.touch(&id).await.unwrap().expect("live");
            assert_eq!(
                older.session.auth_methods,
                [AuthMethod::Password, AuthMethod::Otp]
            );
            assert!(older.session.mfa_verified_at.is_some());
            let check: Option<String> = redis::cmd("HGET")
                .arg(&key)
                .arg("chk")
                .query_async(&mut connection)
                .await
                .unwrap();
            assert!(check.is_some(), "the script writes the check string");
            let again = store.touch(&id).await.unwrap().expect("live");
            assert_eq!(again.session.mfa_verified_at, older.session.mfa_verified_at);
        }

        tokio::time::sleep(IDLE + IDLE / 4).await;
        assert!(
            store.touch(&id).await.unwrap().is_none(),
            "{kind}: an idle session ends"
        );
    }
}
