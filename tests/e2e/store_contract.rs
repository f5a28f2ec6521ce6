//! The store contract: the same stories against SQLite and PostgreSQL.
//! PostgreSQL runs when `TEST_DATABASE_URL` is set, e.g.
//! `postgres://postgres@127.0.0.1:5432/test`.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use accessbot::domain::{
    self, AccessRequest, Actor, App, CardKind, Command, EventKind, NewEvent, Refusal, RequestDraft,
    Status, ThreadMessage,
};
use accessbot::store::{
    Card, Change, Decide, Decided, Delivery, Filed, Follow, IdempotencyKey, NewCard, NewRequest,
    Note, OutboxItem, PutApp, RelayCopy, RequestFilter, SlackUser, Store, StoreError, ThreadChange,
    ThreadPost,
};
use chrono::{DateTime, Duration, TimeZone, Utc};

use crate::support::db::{Backend, TestDb};
use crate::support::story::story;

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
}

fn github() -> App {
    App {
        slug: "github".into(),
        name: "GitHub".into(),
        admins: vec!["UADMIN1".into(), "UADMIN2".into()],
        approvers: vec!["UAPPROVER".into()],
        permissions: vec!["Member".into(), "Admin".into()],
        groups: vec!["eng".into(), "ops".into()],
        admin_channel: Some("CADMINS".into()),
    }
}

fn figma() -> App {
    App {
        slug: "figma".into(),
        name: "Figma".into(),
        admins: vec!["UADMIN1".into()],
        approvers: vec![],
        permissions: vec!["Editor".into()],
        groups: vec![],
        admin_channel: None,
    }
}

/// A request for `app` by `requester`, with its receipt and first-stage cards.
fn new_request(app: &App, requester: &str, key: Option<&str>) -> NewRequest {
    let draft = RequestDraft {
        target_user: requester.into(),
        requester: requester.into(),
        permission: None,
        groups: app.groups.iter().take(1).cloned().collect(),
        comment: "for the <release> & more".into(),
        access_length: "7d".parse().unwrap(),
    };
    let decision = domain::file_request(app, draft, t0()).unwrap();
    let mut new_cards = vec![NewCard {
        kind: CardKind::Receipt,
        recipient: requester.into(),
    }];
    new_cards.extend(decision.request.assignees().iter().map(|user| NewCard {
        kind: if app.approvers.is_empty() {
            CardKind::Provisioning
        } else {
            CardKind::Approval
        },
        recipient: user.clone(),
    }));
    NewRequest {
        request: decision.request,
        event: decision.event,
        new_cards,
        deliveries: vec![Delivery::PublishHome {
            user: requester.into(),
        }],
        republish_homes: vec![],
        idempotency: key.map(|key| IdempotencyKey {
            key: key.to_string(),
            // The body of this test: the app and the requester.
            body_hash: format!("{}/{requester}", app.slug),
            legacy_key: None,
            live_after: t0() - Duration::hours(24),
        }),
    }
}

/// [`new_request`] with key `key`, whose keys recorded at or before `live_after` are over.
fn keyed(app: &App, requester: &str, key: &str, live_after: DateTime<Utc>) -> NewRequest {
    let mut new = new_request(app, requester, Some(key));
    if let Some(key) = &mut new.idempotency {
        key.live_after = live_after;
    }
    new
}

async fn file(store: &Arc<dyn Store>, new: NewRequest) -> AccessRequest {
    match store.file_request(new).await.unwrap() {
        Filed::Created(request) => request,
        other => panic!("not filed: {other:?}"),
    }
}

/// The change `command` by `actor` makes, with the effects the store must carry.
fn change(request: &AccessRequest, actor: &str, command: Command, at: DateTime<Utc>) -> Change {
    try_change(request, actor, &command, at).unwrap()
}

/// Like [`change`], or the domain's refusal.
fn try_change(
    request: &AccessRequest,
    actor: &str,
    command: &Command,
    at: DateTime<Utc>,
) -> Result<Change, Refusal> {
    let decision = domain::decide(request, &Actor::User(actor.into()), command, at)?;
    Ok(Change {
        request: decision.request,
        event: decision.event,
        new_cards: vec![],
        deliveries: vec![Delivery::RefreshCards {
            request_id: request.id,
        }],
        republish_homes: vec![],
        dedup_key: None,
    })
}

/// Claims everything due at `now`.
async fn claim_all(store: &Arc<dyn Store>, now: DateTime<Utc>) -> Vec<OutboxItem> {
    store
        .claim_deliveries("test", now, Duration::minutes(1), 1000)
        .await
        .unwrap()
}

/// Claims everything due at `now` and marks it delivered.
async fn drain(store: &Arc<dyn Store>, now: DateTime<Utc>) -> Vec<Delivery> {
    let items = claim_all(store, now).await;
    let ids: Vec<i64> = items.iter().map(|item| item.id).collect();
    store.deliveries_done(&ids, &[]).await.unwrap();
    deliveries(&items)
}

fn deliveries(items: &[OutboxItem]) -> Vec<Delivery> {
    items.iter().map(|item| item.delivery.clone()).collect()
}

story! {
    async fn apps_are_created_replaced_and_listed_by_slug(store: Arc<dyn Store>) {
        assert!(store.put_app(&github(), t0()).await.unwrap());
        assert!(store.put_app(&figma(), t0()).await.unwrap());
        let mut renamed = github();
        renamed.name = "GitHub Enterprise".into();
        renamed.admin_channel = None;
        renamed.groups = vec![];
        assert!(!store.put_app(&renamed, t0()).await.unwrap());

        assert_eq!(store.app("github").await.unwrap(), Some(renamed.clone()));
        assert_eq!(store.app("nope").await.unwrap(), None);
        assert_eq!(store.apps().await.unwrap(), vec![figma(), renamed]);
    }
}

story! {
    /// The app and its open requests change in one transaction: each open request is
    /// handed to `follow` with its cards and takes the change it returns; final requests
    /// and other apps' are not handed over, and a failing change writes nothing at all.
    async fn putting_an_app_rewrites_its_open_requests_in_the_same_transaction(store: Arc<dyn Store>) {
        store.put_app(&github(), t0()).await.unwrap();
        store.put_app(&figma(), t0()).await.unwrap();
        let open = file(&store, new_request(&github(), "UREQ", None)).await;
        let denied = file(&store, new_request(&github(), "UOTHER", None)).await;
        store
            .apply(change(&denied, "UAPPROVER", Command::Deny, t0()))
            .await
            .unwrap();
        let other_app = file(&store, new_request(&figma(), "UREQ", None)).await;
        let mut catalog = github();
        catalog.approvers = vec!["UAPPROVER2".into()];

        let seen = Arc::new(Mutex::new(Vec::new()));
        let follow: Follow = {
            let (seen, catalog) = (seen.clone(), catalog.clone());
            Arc::new(move |request: &AccessRequest, cards: &[Card]| {
                seen.lock().unwrap().push((request.id, cards.len()));
                let decision = domain::reassign(request, &catalog, &[], t0())?;
                Some(Change {
                    request: decision.request,
                    event: decision.event,
                    new_cards: vec![NewCard {
                        kind: CardKind::Approval,
                        recipient: "UAPPROVER2".into(),
                    }],
                    deliveries: vec![],
                    republish_homes: vec![],
                    dedup_key: None,
                })
            })
        };
        let put = store.put_app_following(&catalog, t0(), follow).await.unwrap();
        assert_eq!(put, PutApp { created: false, followed: vec![open.id] });
        // SQLite may run a job twice (in a savepoint); each request is seen with its 2 cards.
        let seen = seen.lock().unwrap().clone();
        assert!(!seen.is_empty(), "follow was never asked");
        assert!(seen.iter().all(|seen| *seen == (open.id, 2)), "{seen:?}");

        let followed = store.request(open.id).await.unwrap().unwrap();
        assert_eq!(followed.approvers, ["UAPPROVER2"]);
        assert_eq!(followed.version, open.version + 1);
        let kinds: Vec<String> = store.events(open.id).await.unwrap().into_iter().map(|e| e.kind).collect();
        assert_eq!(kinds, ["created", "assignees_changed"]);
        let cards = store.cards(open.id).await.unwrap();
        assert_eq!(cards.last().map(|c| c.recipient.as_str()), Some("UAPPROVER2"));
        assert_eq!(store.request(denied.id).await.unwrap().unwrap().approvers, ["UAPPROVER"]);
        assert_eq!(store.request(other_app.id).await.unwrap().unwrap().version, other_app.version);
        assert_eq!(store.app("github").await.unwrap(), Some(catalog.clone()));

        // A change that cannot apply (its version is stale) undoes the app as well.
        let mut renamed = catalog.clone();
        renamed.name = "GitHub Enterprise".into();
        let stale: Follow = Arc::new(move |request: &AccessRequest, _: &[Card]| {
            let mut next = request.clone();
            next.version = request.version + 5;
            Some(Change {
                request: next,
                event: NewEvent {
                    at: t0(),
                    actor: "api".into(),
                    kind: EventKind::AssigneesChanged,
                    before: None,
                    after: None,
                    detail: None,
                },
                new_cards: vec![],
                deliveries: vec![],
                republish_homes: vec![],
                dedup_key: None,
            })
        });
        assert!(store.put_app_following(&renamed, t0(), stale).await.is_err());
        assert_eq!(store.app("github").await.unwrap(), Some(catalog));
        assert_eq!(store.events(open.id).await.unwrap().len(), 2);
    }
}

story! {
    async fn filing_stores_the_request_and_queues_a_post_of_every_card(store: Arc<dyn Store>) {
        let new = new_request(&github(), "UREQ", None);
        let first = file(&store, new.clone()).await;
        let second = file(&store, new_request(&github(), "UOTHER", None)).await;
        assert!(first.id > 0 && second.id > first.id);
        let mut expected = new.request.clone();
        expected.id = first.id;
        assert_eq!(first, expected);
        assert_eq!(store.request(first.id).await.unwrap(), Some(expected));
        assert_eq!(store.request(first.id + 100).await.unwrap(), None);

        let cards = store.cards(first.id).await.unwrap();
        let kinds: Vec<_> = cards
            .iter()
            .map(|c| (c.kind, c.recipient.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (CardKind::Receipt, "UREQ"),
                (CardKind::Approval, "UAPPROVER")
            ]
        );
        assert!(cards.iter().all(|c| c.channel.is_none() && c.ts.is_none()));
        assert_eq!(
            store.card(cards[1].id).await.unwrap().as_ref(),
            Some(&cards[1])
        );

        let events = store.events(first.id).await.unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events[0].kind, "created");
        assert_eq!(events[0].actor, "UREQ");
        assert_eq!(events[0].at, t0());
        assert_eq!(events[0].after, new.event.after);
        assert_eq!(events[0].before, None);

        let items = claim_all(&store, t0()).await;
        let first_items: Vec<_> = items
            .iter()
            .filter(|i| i.request_id == Some(first.id))
            .collect();
        assert_eq!(
            first_items
                .iter()
                .map(|i| i.delivery.clone())
                .collect::<Vec<_>>(),
            [
                Delivery::PostCard {
                    card_id: cards[0].id
                },
                Delivery::PostCard {
                    card_id: cards[1].id
                },
                Delivery::PublishHome {
                    user: "UREQ".into()
                },
            ]
        );
        assert!(items.iter().all(|i| i.attempts == 0));
    }
}

story! {
    async fn filing_again_with_a_used_idempotency_key_returns_the_first_request(store: Arc<dyn Store>) {
        let first = file(&store, new_request(&github(), "UREQ", Some("key-1"))).await;
        let again = store
            .file_request(new_request(&github(), "UREQ", Some("key-1")))
            .await
            .unwrap();
        assert_eq!(again, Filed::Existing(first.clone()));
        let other_body = store
            .file_request(new_request(&figma(), "UOTHER", Some("key-1")))
            .await
            .unwrap();
        assert_eq!(other_body, Filed::KeyUsedForAnotherBody);
        let other = file(&store, new_request(&github(), "UREQ", Some("key-2"))).await;
        assert_ne!(other.id, first.id);
        assert_eq!(
            store
                .requests(&RequestFilter::default())
                .await
                .unwrap()
                .len(),
            2,
            "another body with a used key files nothing"
        );
        assert_eq!(store.events(first.id).await.unwrap().len(), 1);
    }
}

story! {
    async fn an_idempotency_key_files_anew_once_over_and_is_swept(store: Arc<dyn Store>) {
        // Each filing is recorded at t0 (the time of its event).
        let first = file(&store, keyed(&github(), "UREQ", "k", t0() - Duration::hours(24))).await;
        // A day later the key is over: the same key files anew, even with another body…
        let second = file(&store, keyed(&figma(), "UOTHER", "k", t0())).await;
        assert_ne!(second.id, first.id);
        // …and is bound to that body from then on.
        let live_after = t0() - Duration::hours(1);
        let again = store
            .file_request(keyed(&figma(), "UOTHER", "k", live_after))
            .await
            .unwrap();
        assert_eq!(again, Filed::Existing(second.clone()));
        let first_body = store
            .file_request(keyed(&github(), "UREQ", "k", live_after))
            .await
            .unwrap();
        assert_eq!(first_body, Filed::KeyUsedForAnotherBody);

        // The sweep forgets keys recorded before its cutoff: even a look-up that would take
        // the key as live finds nothing left.
        store
            .prune(t0() + Duration::seconds(1), t0() - Duration::days(7))
            .await
            .unwrap();
        let third = file(&store, keyed(&github(), "UREQ", "k", t0() - Duration::days(30))).await;
        assert!(third.id != first.id && third.id != second.id);
        assert_eq!(
            store.requests(&RequestFilter::default()).await.unwrap().len(),
            3
        );
    }
}

story! {
    async fn concurrent_filings_with_one_key_file_one_request(store: Arc<dyn Store>) {
        let filings = (0..8).map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .file_request(new_request(&github(), "UREQ", Some("same")))
                    .await
                    .unwrap()
            })
        });
        let mut created = Vec::new();
        let mut ids = HashSet::new();
        for filing in filings {
            match filing.await.unwrap() {
                Filed::Created(request) => {
                    ids.insert(request.id);
                    created.push(request.id);
                }
                Filed::Existing(request) => {
                    ids.insert(request.id);
                }
                Filed::KeyUsedForAnotherBody => panic!("the same body"),
            }
        }
        assert_eq!(created.len(), 1);
        assert_eq!(ids.len(), 1);
        assert_eq!(
            store
                .requests(&RequestFilter::default())
                .await
                .unwrap()
                .len(),
            1
        );
        assert_eq!(store.cards(created[0]).await.unwrap().len(), 2);
    }
}

story! {
    async fn applying_on_the_current_version_stores_the_change_and_its_effects(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&github(), "UREQ", None)).await;
        drain(&store, t0()).await;

        let at = t0() + Duration::minutes(5);
        let mut approve = change(&filed, "UAPPROVER", Command::Approve, at);
        approve.new_cards = vec![
            NewCard {
                kind: CardKind::Provisioning,
                recipient: "UADMIN1".into(),
            },
            NewCard {
                kind: CardKind::Provisioning,
                recipient: "CADMINS".into(),
            },
        ];
        approve.deliveries.push(Delivery::PostMessage {
            channel: "UREQ".into(),
            text: "approved".into(),
            blocks: None,
        });
        let approved = approve.request.clone();
        store.apply(approve).await.unwrap();

        assert_eq!(
            store.request(filed.id).await.unwrap(),
            Some(approved.clone())
        );
        assert_eq!(approved.version, filed.version + 1);
        let events = store.events(filed.id).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["created", "approved"]
        );
        assert_eq!(events[1].at, at);

        let cards = store.cards(filed.id).await.unwrap();
        assert_eq!(cards.len(), 4);
        let queued = drain(&store, at).await;
        assert_eq!(
            queued,
            [
                Delivery::PostCard {
                    card_id: cards[2].id
                },
                Delivery::PostCard {
                    card_id: cards[3].id
                },
                Delivery::RefreshCards {
                    request_id: filed.id
                },
                Delivery::PostMessage {
                    channel: "UREQ".into(),
                    text: "approved".into(),
                    blocks: None
                },
            ]
        );

        // Every field survives the round trip, including the optional ones.
        let mut provisioned = change(
            &approved,
            "UADMIN1",
            Command::ConfirmProvisioning,
            at + Duration::hours(1),
        );
        provisioned.request.denial_feedback = Some("\"quoted\" ✓".into());
        provisioned.request.expiry_reminded = true;
        provisioned.request.removed_at = Some(at + Duration::milliseconds(1234));
        let expected = provisioned.request.clone();
        assert!(expected.expires_at.is_some());
        store.apply(provisioned).await.unwrap();
        assert_eq!(store.request(filed.id).await.unwrap(), Some(expected));
    }
}

story! {
    async fn applying_on_a_stale_version_conflicts_and_changes_nothing(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&github(), "UREQ", None)).await;
        drain(&store, t0()).await;
        let approve = change(&filed, "UAPPROVER", Command::Approve, t0());
        let mut deny = change(&filed, "UAPPROVER", Command::Deny, t0());
        deny.new_cards = vec![NewCard {
            kind: CardKind::Receipt,
            recipient: "UX".into(),
        }];
        deny.deliveries = vec![Delivery::PublishHome {
            user: "UREQ".into(),
        }];
        store.apply(approve.clone()).await.unwrap();

        assert!(matches!(store.apply(deny).await, Err(StoreError::Conflict)));
        assert!(matches!(
            store.apply(approve.clone()).await,
            Err(StoreError::Conflict)
        ));
        assert_eq!(
            store.request(filed.id).await.unwrap(),
            Some(approve.request)
        );
        assert_eq!(store.events(filed.id).await.unwrap().len(), 2);
        assert_eq!(store.cards(filed.id).await.unwrap().len(), 2);
        // Only the winner's card refresh is queued.
        assert_eq!(claim_all(&store, t0()).await.len(), 1);

        let mut unknown = change(&filed, "UAPPROVER", Command::Approve, t0());
        unknown.request.id = filed.id + 1000;
        assert!(matches!(
            store.apply(unknown).await,
            Err(StoreError::Conflict)
        ));
    }
}

story! {
    async fn a_change_whose_key_was_applied_before_is_a_duplicate(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&github(), "UREQ", None)).await;
        drain(&store, t0()).await;
        let mut approve = change(&filed, "UAPPROVER", Command::Approve, t0());
        approve.dedup_key = Some("click:UAPPROVER:1".into());
        store.apply(approve.clone()).await.unwrap();
        // The same click again: a duplicate, whatever version it was decided on.
        assert!(matches!(
            store.apply(approve.clone()).await,
            Err(StoreError::Duplicate)
        ));

        // A click that lost a race leaves its key unused: decided again, it goes through.
        let mut stale = change(&filed, "UAPPROVER", Command::Deny, t0());
        stale.dedup_key = Some("click:UADMIN1:2".into());
        assert!(matches!(
            store.apply(stale).await,
            Err(StoreError::Conflict)
        ));
        let mut confirm = change(
            &approve.request,
            "UADMIN1",
            Command::ConfirmProvisioning,
            t0(),
        );
        confirm.dedup_key = Some("click:UADMIN1:2".into());
        store.apply(confirm.clone()).await.unwrap();

        assert_eq!(
            store.request(filed.id).await.unwrap(),
            Some(confirm.request)
        );
        assert_eq!(store.events(filed.id).await.unwrap().len(), 3);
        // The cards are refreshed once per applied change.
        assert_eq!(claim_all(&store, t0()).await.len(), 2);
    }
}

story! {
    async fn concurrent_decisions_on_one_version_have_one_winner(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&figma(), "UREQ", None)).await;
        let attempts = (0..6).map(|i| {
            let command = if i % 2 == 0 {
                Command::ConfirmProvisioning
            } else {
                Command::Deny
            };
            let change = change(&filed, "UADMIN1", command, t0());
            let store = store.clone();
            tokio::spawn(async move { store.apply(change).await })
        });
        let mut wins = 0;
        for attempt in attempts {
            match attempt.await.unwrap() {
                Ok(()) => wins += 1,
                Err(StoreError::Conflict) => {}
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(wins, 1);
        assert_eq!(store.events(filed.id).await.unwrap().len(), 2);
        assert_eq!(store.request(filed.id).await.unwrap().unwrap().version, 2);
    }
}

story! {
    async fn concurrent_claimers_never_get_the_same_delivery(store: Arc<dyn Store>) {
        let messages: Vec<Delivery> = (0..60)
            .map(|i| Delivery::PublishHome {
                user: format!("U{i}"),
            })
            .collect();
        store.enqueue(None, &messages, t0()).await.unwrap();
        let claimers = (0..6).map(|worker| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let owner = format!("worker-{worker}");
                    let batch = store
                        .claim_deliveries(&owner, t0(), Duration::minutes(1), 3)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|item| item.id));
                }
            })
        });
        let mut seen = HashSet::new();
        for claimer in claimers {
            for id in claimer.await.unwrap() {
                assert!(seen.insert(id), "delivery {id} claimed twice");
            }
        }
        assert_eq!(seen.len(), 60);
        assert!(claim_all(&store, t0()).await.is_empty());
    }
}

story! {
    async fn a_delivery_whose_lease_ran_out_is_claimed_again(store: Arc<dyn Store>) {
        let home = Delivery::PublishHome {
            user: "UREQ".into(),
        };
        store
            .enqueue(None, std::slice::from_ref(&home), t0())
            .await
            .unwrap();
        let lease = Duration::seconds(30);
        let first = store.claim_deliveries("a", t0(), lease, 10).await.unwrap();
        assert_eq!(deliveries(&first), [home]);
        assert_eq!(first[0].attempts, 0);
        assert_eq!(first[0].request_id, None);
        assert_eq!(store.next_delivery_due().await.unwrap(), Some(t0() + lease));

        let during = t0() + Duration::seconds(29);
        assert!(store
            .claim_deliveries("b", during, lease, 10)
            .await
            .unwrap()
            .is_empty());
        let after = t0() + lease;
        let second = store.claim_deliveries("b", after, lease, 10).await.unwrap();
        assert_eq!(second.len(), 1);
        assert_eq!(second[0].id, first[0].id);
        assert_eq!(second[0].attempts, 1);

        store.deliveries_done(&[second[0].id], &[]).await.unwrap();
        assert!(claim_all(&store, after + Duration::hours(1))
            .await
            .is_empty());
        assert_eq!(store.next_delivery_due().await.unwrap(), None);
        assert_eq!(store.stats().await.unwrap().deliveries_waiting, 0);
    }
}

story! {
    async fn a_postponed_delivery_is_not_due_before_its_time(store: Arc<dyn Store>) {
        assert_eq!(store.next_delivery_due().await.unwrap(), None);
        store
            .enqueue(
                None,
                &[Delivery::PublishHome {
                    user: "UREQ".into(),
                }],
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(store.next_delivery_due().await.unwrap(), Some(t0()));
        let item = claim_all(&store, t0()).await.remove(0);
        let later = t0() + Duration::seconds(42);
        store
            .delivery_postponed(item.id, later, "HTTP 503", true)
            .await
            .unwrap();

        assert_eq!(store.next_delivery_due().await.unwrap(), Some(later));
        assert!(claim_all(&store, later - Duration::milliseconds(1))
            .await
            .is_empty());
        let again = claim_all(&store, later).await;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].attempts, 1);
        assert_eq!(again[0].last_error.as_deref(), Some("HTTP 503"));

        // A 429 gives its claim back: it is no attempt.
        store
            .delivery_postponed(again[0].id, later, "rate limited", false)
            .await
            .unwrap();
        let third = claim_all(&store, later).await;
        assert_eq!(third[0].attempts, 1);
    }
}

story! {
    async fn a_failed_delivery_is_listed_audited_and_can_be_retried(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&figma(), "UREQ", None)).await;
        let items = claim_all(&store, t0()).await;
        let post = items
            .iter()
            .find(|i| matches!(i.delivery, Delivery::PostCard { .. }))
            .unwrap();
        for other in items.iter().filter(|i| i.id != post.id) {
            store.deliveries_done(&[other.id], &[]).await.unwrap();
        }
        let failed_at = t0() + Duration::seconds(3);
        store
            .delivery_failed(post.id, "channel_not_found", failed_at)
            .await
            .unwrap();

        let failed = store.failed_deliveries(None, 100).await.unwrap();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].id, post.id);
        assert_eq!(failed[0].request_id, Some(filed.id));
        assert_eq!(failed[0].method, "chat.postMessage");
        assert_eq!(failed[0].error, "channel_not_found");
        assert_eq!(failed[0].attempts, 1);
        assert_eq!(failed[0].created_at, t0());
        assert_eq!(failed[0].failed_at, failed_at);
        let events = store.events(filed.id).await.unwrap();
        let last = events.last().unwrap();
        assert_eq!(last.kind, EventKind::DeliveryFailed.as_str());
        assert_eq!(last.actor, "system");
        assert_eq!(
            last.detail.as_deref(),
            Some("chat.postMessage failed: channel_not_found")
        );
        assert_eq!(store.stats().await.unwrap().deliveries_failed, 1);

        // A delivery with no request fails without an audit entry.
        store
            .enqueue(None, &[Delivery::PublishHome { user: "UX".into() }], t0())
            .await
            .unwrap();
        let loose = claim_all(&store, failed_at).await.remove(0);
        store
            .delivery_failed(loose.id, "invalid_auth", failed_at)
            .await
            .unwrap();
        assert_eq!(store.events(filed.id).await.unwrap().len(), events.len());

        let retry_at = t0() + Duration::minutes(10);
        assert!(store.retry_delivery(post.id, retry_at).await.unwrap());
        assert!(!store.retry_delivery(post.id, retry_at).await.unwrap());
        assert!(!store
            .retry_delivery(post.id + 1000, retry_at)
            .await
            .unwrap());
        assert_eq!(store.failed_deliveries(None, 100).await.unwrap().len(), 1);
        let again = claim_all(&store, retry_at).await;
        assert_eq!(again.len(), 1);
        assert_eq!(again[0].id, post.id);
        assert_eq!(again[0].delivery, post.delivery);
    }
}

story! {
    async fn failed_deliveries_are_listed_a_page_at_a_time(store: Arc<dyn Store>) {
        let homes: Vec<Delivery> = (0..5)
            .map(|i| Delivery::PublishHome { user: format!("U{i}") })
            .collect();
        store.enqueue(None, &homes, t0()).await.unwrap();
        let mut ids = Vec::new();
        for item in claim_all(&store, t0()).await {
            store.delivery_failed(item.id, "invalid_auth", t0()).await.unwrap();
            ids.push(item.id);
        }
        let mut pages = Vec::new();
        let mut after = None;
        loop {
            let page = store.failed_deliveries(after, 2).await.unwrap();
            let Some(last) = page.last() else { break };
            after = Some(last.id);
            pages.push(page.iter().map(|f| f.id).collect::<Vec<_>>());
        }
        assert_eq!(pages, [&ids[0..2], &ids[2..4], &ids[4..5]]);
        assert_eq!(store.failed_deliveries(None, 100).await.unwrap().len(), 5);
    }
}

story! {
    async fn a_card_posted_after_its_request_moved_on_is_queued_for_an_update(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&github(), "UREQ", None)).await;
        drain(&store, t0()).await;
        let cards = store.cards(filed.id).await.unwrap();

        store
            .card_posted(cards[0].id, "DREQ", "1.0001", filed.version, t0())
            .await
            .unwrap();
        let posted = store.card(cards[0].id).await.unwrap().unwrap();
        assert_eq!(posted.channel.as_deref(), Some("DREQ"));
        assert_eq!(posted.ts.as_deref(), Some("1.0001"));
        assert_eq!(posted.rendered_version, filed.version);
        assert!(claim_all(&store, t0()).await.is_empty());

        let mut approve = change(&filed, "UAPPROVER", Command::Approve, t0());
        approve.deliveries.clear();
        store.apply(approve).await.unwrap();
        store
            .card_posted(cards[1].id, "DAPP", "2.0002", filed.version, t0())
            .await
            .unwrap();
        assert_eq!(
            deliveries(&claim_all(&store, t0()).await),
            [Delivery::UpdateCard {
                card_id: cards[1].id
            }]
        );

        store
            .deliveries_done(&[], &[(cards[1].id, filed.version + 1)])
            .await
            .unwrap();
        store
            .deliveries_done(&[], &[(cards[1].id, filed.version)])
            .await
            .unwrap();
        assert_eq!(
            store
                .card(cards[1].id)
                .await
                .unwrap()
                .unwrap()
                .rendered_version,
            filed.version + 1
        );
        assert_eq!(store.card(cards[1].id + 1000).await.unwrap(), None);

        // Several cards at once, each twice (two updates of it finished in one batch), the
        // newer first for one and last for the other: whichever row a database would pick,
        // only the newest version may stand.
        let v = filed.version;
        store
            .deliveries_done(
                &[],
                &[
                    (cards[0].id, v + 3),
                    (cards[1].id, v + 2),
                    (cards[0].id, v + 2),
                    (cards[1].id, v + 3),
                ],
            )
            .await
            .unwrap();
        for (card, version) in [(&cards[0], v + 3), (&cards[1], v + 3)] {
            let stored = store.card(card.id).await.unwrap().unwrap();
            assert_eq!(stored.rendered_version, version);
        }
    }
}

story! {
    async fn refreshes_expanded_together_queue_updates_refresh_by_refresh(store: Arc<dyn Store>) {
        let first = file(&store, new_request(&github(), "UREQ", None)).await;
        let second = file(&store, new_request(&github(), "UREQ2", None)).await;
        drain(&store, t0()).await;
        for request in [&second, &first] {
            store
                .apply(change(request, "UAPPROVER", Command::Approve, t0()))
                .await
                .unwrap();
        }
        let claimed = claim_all(&store, t0()).await;
        let refreshes: Vec<(i64, i64)> = claimed
            .iter()
            .map(|item| match item.delivery {
                Delivery::RefreshCards { request_id } => (item.id, request_id),
                ref other => panic!("claimed {other:?}"),
            })
            .collect();
        assert_eq!(refreshes.len(), 2);
        store
            .expand_card_refreshes("test", &refreshes, t0())
            .await
            .unwrap();

        // In the order the refreshes were queued (second request first), each card in order.
        let mut updates = Vec::new();
        for request in [&second, &first] {
            for card in store.cards(request.id).await.unwrap() {
                updates.push(Delivery::UpdateCard { card_id: card.id });
            }
        }
        assert_eq!(drain(&store, t0()).await, updates);
    }
}

story! {
    async fn a_card_refresh_becomes_one_update_per_card_once(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&github(), "UREQ", None)).await;
        let cards = store.cards(filed.id).await.unwrap();
        drain(&store, t0()).await;
        store
            .apply(change(&filed, "UAPPROVER", Command::Approve, t0()))
            .await
            .unwrap();
        let claimed = claim_all(&store, t0()).await;
        assert_eq!(
            deliveries(&claimed),
            [Delivery::RefreshCards {
                request_id: filed.id
            }]
        );
        let refresh = claimed[0].id;

        // Only the worker holding the claim expands it.
        store
            .expand_card_refreshes("someone-else", &[(refresh, filed.id)], t0())
            .await
            .unwrap();
        assert!(claim_all(&store, t0()).await.is_empty());
        store
            .expand_card_refreshes("test", &[(refresh, filed.id)], t0())
            .await
            .unwrap();
        store
            .expand_card_refreshes("test", &[(refresh, filed.id)], t0())
            .await
            .unwrap();
        let updates: Vec<Delivery> = cards
            .iter()
            .map(|card| Delivery::UpdateCard { card_id: card.id })
            .collect();
        assert_eq!(drain(&store, t0()).await, updates);
        assert_eq!(store.stats().await.unwrap().deliveries_waiting, 0);
    }
}

story! {
    async fn deciding_reads_decides_and_applies_once(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&github(), "UREQ", None)).await;
        drain(&store, t0()).await;
        let decide = |actor: &'static str, command: Command| -> Decide {
            Arc::new(move |request: AccessRequest| try_change(&request, actor, &command, t0()))
        };
        let key = Some("click:UAPPROVER:1".to_string());

        let Decided::Applied(approved) = store
            .decide(filed.id, key.clone(), decide("UAPPROVER", Command::Approve))
            .await
            .unwrap()
        else {
            panic!("the approval was not applied");
        };
        assert_eq!(approved.status, Status::PendingProvisioning);
        assert_eq!(approved.version, filed.version + 1);
        assert_eq!(store.request(filed.id).await.unwrap(), Some(*approved));

        // A used key is a duplicate, even for a change that could be applied now.
        assert!(matches!(
            store
                .decide(
                    filed.id,
                    key,
                    decide("UADMIN1", Command::ConfirmProvisioning)
                )
                .await,
            Err(StoreError::Duplicate)
        ));
        // A refusal writes nothing, not even its key.
        let refused_key = Some("click:UREQ:2".to_string());
        assert!(matches!(
            store
                .decide(
                    filed.id,
                    refused_key.clone(),
                    decide("UREQ", Command::ConfirmProvisioning)
                )
                .await
                .unwrap(),
            Decided::Refused(_)
        ));
        assert!(store.claim_key("click:UREQ:2", t0()).await.unwrap());
        assert!(matches!(
            store
                .decide(filed.id + 100, None, decide("UADMIN1", Command::Deny))
                .await
                .unwrap(),
            Decided::NotFound
        ));
        let events = store.events(filed.id).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["created", "approved"]
        );
        assert_eq!(
            drain(&store, t0()).await,
            [Delivery::RefreshCards {
                request_id: filed.id
            }]
        );
    }
}

story! {
    /// Decisions on one request made at the same moment (they share a batch, or wait for each
    /// other's row lock): the first applies, each later one is decided on the state it left.
    async fn concurrent_decisions_on_one_request_apply_once(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&figma(), "UREQ", None)).await;
        drain(&store, t0()).await;
        let decisions = (0..16).map(|click| {
            let decide: Decide = Arc::new(|request: AccessRequest| {
                try_change(&request, "UADMIN1", &Command::ConfirmProvisioning, t0())
            });
            store.decide(filed.id, Some(format!("click:UADMIN1:{click}")), decide)
        });
        let outcomes = futures::future::join_all(decisions).await;

        let applied = outcomes
            .iter()
            .filter(|outcome| matches!(outcome, Ok(Decided::Applied(_))))
            .count();
        let refused = outcomes
            .iter()
            .filter(|outcome| {
                matches!(
                    outcome,
                    Ok(Decided::Refused(Refusal::AlreadyDecided { .. }))
                )
            })
            .count();
        assert_eq!((applied, refused), (1, 15), "{outcomes:?}");
        let stored = store.request(filed.id).await.unwrap().unwrap();
        assert_eq!(
            (stored.status, stored.version),
            (Status::Provisioned, filed.version + 1)
        );
        let events = store.events(filed.id).await.unwrap();
        assert_eq!(
            events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
            ["created", "provisioned"]
        );
    }
}

story! {
    async fn requests_are_listed_newest_first_with_filters_and_a_cursor(store: Arc<dyn Store>) {
        let a = file(&store, new_request(&github(), "UA", None)).await;
        let b = file(&store, new_request(&figma(), "UB", None)).await;
        let mut for_other = new_request(&github(), "UA", None);
        for_other.request.target_user = "UC".into();
        let c = file(&store, for_other).await;
        let ids = |requests: Vec<AccessRequest>| requests.iter().map(|r| r.id).collect::<Vec<_>>();
        let list = |filter: RequestFilter| {
            let store = store.clone();
            async move { ids(store.requests(&filter).await.unwrap()) }
        };

        assert_eq!(list(RequestFilter::default()).await, [c.id, b.id, a.id]);
        assert_eq!(
            list(RequestFilter {
                limit: 2,
                ..Default::default()
            })
            .await,
            [c.id, b.id]
        );
        assert_eq!(
            list(RequestFilter {
                before_id: Some(b.id),
                ..Default::default()
            })
            .await,
            [a.id]
        );
        assert_eq!(
            list(RequestFilter {
                app: Some("github".into()),
                ..Default::default()
            })
            .await,
            [c.id, a.id]
        );
        assert_eq!(
            list(RequestFilter {
                status: Some(Status::PendingProvisioning),
                ..Default::default()
            })
            .await,
            [b.id]
        );
        assert_eq!(
            list(RequestFilter {
                user: Some("UC".into()),
                ..Default::default()
            })
            .await,
            [c.id]
        );
        assert_eq!(
            list(RequestFilter {
                user: Some("UA".into()),
                ..Default::default()
            })
            .await,
            [c.id, a.id]
        );
        assert!(list(RequestFilter {
            user: Some("UZ".into()),
            ..Default::default()
        })
        .await
        .is_empty());
    }
}

story! {
    async fn stats_count_requests_by_status_and_waiting_deliveries(store: Arc<dyn Store>) {
        let empty = store.stats().await.unwrap();
        assert_eq!(
            empty.requests_by_status,
            Status::ALL.iter().map(|&s| (s, 0)).collect::<Vec<_>>()
        );
        assert_eq!((empty.deliveries_waiting, empty.deliveries_failed), (0, 0));
        assert_eq!(store.deliveries_waiting().await.unwrap(), 0);

        file(&store, new_request(&github(), "UA", None)).await;
        file(&store, new_request(&github(), "UB", None)).await;
        let c = file(&store, new_request(&figma(), "UC", None)).await;
        store
            .apply(change(&c, "UADMIN1", Command::Deny, t0()))
            .await
            .unwrap();
        store.ping().await.unwrap();

        let stats = store.stats().await.unwrap();
        let count = |status| {
            stats
                .requests_by_status
                .iter()
                .find(|(s, _)| *s == status)
                .unwrap()
                .1
        };
        assert_eq!(stats.requests_by_status.len(), Status::ALL.len());
        assert_eq!(count(Status::PendingApproval), 2);
        assert_eq!(count(Status::Denied), 1);
        assert_eq!(count(Status::Provisioned), 0);
        // Per request: a receipt, the stage's cards and a home; plus a refresh of c's cards.
        assert_eq!(stats.deliveries_waiting, 3 + 3 + 3 + 1);
        assert_eq!(store.deliveries_waiting().await.unwrap(), stats.deliveries_waiting);
        assert_eq!(stats.deliveries_failed, 0);
    }
}

#[tokio::test]
async fn an_in_memory_sqlite_store_works() {
    // Changes take another path there (no group commit): the stories about them hold too.
    let memory = || async { accessbot::store::connect("sqlite::memory:").await.unwrap() };
    let store = memory().await;
    let filed = file(&store, new_request(&github(), "UREQ", None)).await;
    assert_eq!(store.request(filed.id).await.unwrap(), Some(filed));
    assert_eq!(claim_all(&store, t0()).await.len(), 3);
    applying_on_the_current_version_stores_the_change_and_its_effects(memory().await).await;
    applying_on_a_stale_version_conflicts_and_changes_nothing(memory().await).await;
    a_change_whose_key_was_applied_before_is_a_duplicate(memory().await).await;
    homes_are_republished_only_for_users_who_opened_them(memory().await).await;
    deciding_reads_decides_and_applies_once(memory().await).await;
    concurrent_decisions_on_one_request_apply_once(memory().await).await;
    a_card_refresh_becomes_one_update_per_card_once(memory().await).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_on_one_postgres_never_claim_the_same_delivery() {
    {
        let backend = Backend::Postgres;
        let Some(db) = TestDb::new(backend).await else {
            return;
        };
        let replicas = [db.store().await, db.store().await];
        let messages: Vec<Delivery> = (0..40)
            .map(|i| Delivery::PublishHome {
                user: format!("U{i}"),
            })
            .collect();
        replicas[0].enqueue(None, &messages, t0()).await.unwrap();
        let claimers = (0..4).map(|worker| {
            let store = replicas[worker % 2].clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let batch = store
                        .claim_deliveries(&format!("r{worker}"), t0(), Duration::minutes(1), 2)
                        .await
                        .unwrap();
                    if batch.is_empty() {
                        return mine;
                    }
                    mine.extend(batch.into_iter().map(|item| item.id));
                }
            })
        });
        let mut seen = HashSet::new();
        for claimer in claimers {
            for id in claimer.await.unwrap() {
                assert!(seen.insert(id), "{backend:?}: delivery {id} claimed twice");
            }
        }
        assert_eq!(seen.len(), 40, "{backend:?}");
    }
}

/// PostgreSQL decides without holding locks while it decides: a decision whose request
/// another replica changed in the meantime writes nothing (not even its key) and is made
/// again on the new state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_decision_on_a_request_another_replica_changed_meanwhile_is_made_again() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let (ours, theirs) = (db.store().await, db.store().await);
    let filed = file(&ours, new_request(&figma(), "UREQ", None)).await;
    drain(&ours, t0()).await;
    let (read, has_read) = mpsc::channel::<()>();
    let (denied, has_denied) = mpsc::channel::<()>();
    let has_denied = Mutex::new(has_denied);
    let calls = Arc::new(AtomicUsize::new(0));
    let decide: Decide = {
        let calls = calls.clone();
        Arc::new(move |request: AccessRequest| {
            // The first time, the other replica denies the request while we decide
            // (decisions are made on a thread of their own, which may block).
            if calls.fetch_add(1, Ordering::SeqCst) == 0 {
                read.send(()).unwrap();
                has_denied.lock().unwrap().recv().unwrap();
            }
            try_change(&request, "UADMIN1", &Command::ConfirmProvisioning, t0())
        })
    };
    let decision = tokio::spawn({
        let ours = ours.clone();
        async move {
            ours.decide(filed.id, Some("click:UADMIN1:1".into()), decide)
                .await
        }
    });
    tokio::task::spawn_blocking(move || has_read.recv())
        .await
        .unwrap()
        .unwrap();
    theirs
        .apply(change(&filed, "UADMIN1", Command::Deny, t0()))
        .await
        .unwrap();
    denied.send(()).unwrap();

    let outcome = decision.await.unwrap();
    assert!(
        matches!(
            outcome,
            Ok(Decided::Refused(Refusal::AlreadyDecided { .. }))
        ),
        "{outcome:?}"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    let stored = ours.request(filed.id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Denied);
    let events = ours.events(filed.id).await.unwrap();
    assert_eq!(
        events.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(),
        ["created", "denied"]
    );
    // The losing decision's key was not kept.
    assert!(ours.claim_key("click:UADMIN1:1", t0()).await.unwrap());
}

#[tokio::test]
async fn a_second_process_on_one_sqlite_file_is_refused_with_a_clear_message() {
    let db = TestDb::sqlite().await;
    let first = db.store().await;
    let second = accessbot::store::connect(db.url()).await;
    let Err(err) = second else {
        panic!("a second store opened the same SQLite file");
    };
    assert!(matches!(err, StoreError::InUse(_)), "{err}");
    assert!(err.to_string().contains("use PostgreSQL"), "{err}");
    drop(first);
    // The lock goes with the store that held it.
    accessbot::store::connect(db.url()).await.unwrap();
}

#[tokio::test]
async fn an_unreadable_stored_payload_is_dead_lettered_not_returned() {
    let db = TestDb::sqlite().await;
    let store = db.store().await;
    store
        .enqueue(None, &[Delivery::PublishHome { user: "U1".into() }], t0())
        .await
        .unwrap();
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(db.url())
        .await
        .unwrap();
    sqlx::query("UPDATE outbox SET payload = '{\"type\":\"nope\"}'")
        .execute(&mut conn)
        .await
        .unwrap();
    store
        .enqueue(None, &[Delivery::PublishHome { user: "U2".into() }], t0())
        .await
        .unwrap();

    let items = claim_all(&store, t0()).await;
    assert_eq!(
        deliveries(&items),
        [Delivery::PublishHome { user: "U2".into() }]
    );
    let failed = store.failed_deliveries(None, 100).await.unwrap();
    assert_eq!(failed.len(), 1);
    assert!(
        failed[0].error.contains("not a delivery"),
        "{}",
        failed[0].error
    );
}

story! {
    async fn the_users_directory_keeps_one_row_per_user_and_replaces_it(store: Arc<dyn Store>) {
        assert_eq!(store.slack_user("UADA").await.unwrap(), None);
        let ada = SlackUser {
            id: "UADA".into(),
            display_name: "ada".into(),
            real_name: "Ada Lovelace".into(),
            deleted: false,
            tz: Some("Europe/London".into()),
            email: Some("ada@example.com".into()),
            refreshed_at: t0(),
        };
        store.save_slack_user(&ada).await.unwrap();
        assert_eq!(store.slack_user("UADA").await.unwrap(), Some(ada.clone()));
        assert_eq!(store.slack_user("UOTHER").await.unwrap(), None);

        let gone = SlackUser {
            deleted: true,
            tz: None,
            email: None,
            refreshed_at: t0() + Duration::hours(25),
            ..ada
        };
        store.save_slack_user(&gone).await.unwrap();
        assert_eq!(store.slack_user("UADA").await.unwrap(), Some(gone));
    }
}

story! {
    async fn card_states_tell_posted_failed_and_waiting_cards_apart(store: Arc<dyn Store>) {
        let mut new = new_request(&github(), "UREQ", None);
        new.new_cards.push(NewCard {
            kind: CardKind::Approval,
            recipient: "UAPPROVER2".into(),
        });
        let filed = file(&store, new).await;
        let other = file(&store, new_request(&github(), "UOTHER", None)).await;
        let cards = store.cards(filed.id).await.unwrap();
        let items = claim_all(&store, t0()).await;
        let post_of = |card_id: i64| {
            items
                .iter()
                .find(|i| i.delivery == Delivery::PostCard { card_id })
                .unwrap()
                .id
        };
        // The receipt is posted, the approver's card failed, the second approver's waits;
        // the other request's failure is its own.
        store
            .card_posted(cards[0].id, "DREQ", "1.0", filed.version, t0())
            .await
            .unwrap();
        store
            .delivery_failed(post_of(cards[1].id), "UAPPROVER is deactivated in Slack", t0())
            .await
            .unwrap();
        let other_approval = store.cards(other.id).await.unwrap()[1].id;
        store
            .delivery_failed(post_of(other_approval), "chat.postMessage failed: is_archived", t0())
            .await
            .unwrap();

        let states = store.card_states(filed.id).await.unwrap();
        let seen: Vec<_> = states
            .iter()
            .map(|s| (s.card.id, s.card.ts.is_some(), s.failed.as_deref()))
            .collect();
        assert_eq!(
            seen,
            [
                (cards[0].id, true, None),
                (cards[1].id, false, Some("UAPPROVER is deactivated in Slack")),
                (cards[2].id, false, None),
            ]
        );
        assert_eq!(states[1].card, cards[1]);

        // A retried card waits again.
        assert!(store.retry_delivery(post_of(cards[1].id), t0()).await.unwrap());
        let states = store.card_states(filed.id).await.unwrap();
        assert!(states.iter().all(|s| s.failed.is_none()));
        assert_eq!(store.card_states(filed.id + 100).await.unwrap(), []);
    }
}

story! {
    async fn a_note_is_written_once_with_its_event_and_deliveries(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&github(), "UREQ", None)).await;
        drain(&store, t0()).await;
        let events = store.events(filed.id).await.unwrap().len();
        let note = Note {
            key: format!("nobody:{}:pending_approval:1", filed.id),
            request_id: filed.id,
            event: Some(NewEvent {
                at: t0(),
                actor: "system".into(),
                kind: EventKind::NobodyToAct,
                before: None,
                after: None,
                detail: Some("nobody left to act on the approval stage".into()),
            }),
            deliveries: vec![Delivery::PublishHome {
                user: "UADMIN1".into(),
            }],
            at: t0(),
        };
        assert!(store.note_once(note.clone()).await.unwrap());
        assert!(!store.note_once(note.clone()).await.unwrap());
        let trail = store.events(filed.id).await.unwrap();
        assert_eq!(trail.len(), events + 1);
        assert_eq!(trail.last().unwrap().kind, "nobody_to_act");
        assert_eq!(
            trail.last().unwrap().detail.as_deref(),
            Some("nobody left to act on the approval stage")
        );
        let queued = claim_all(&store, t0()).await;
        assert_eq!(deliveries(&queued), note.deliveries);
        assert!(queued.iter().all(|i| i.request_id == Some(filed.id)));

        // A note without an event queues its deliveries alone.
        let quiet = Note {
            key: "no-dm:1".into(),
            event: None,
            ..note
        };
        assert!(store.note_once(quiet).await.unwrap());
        assert_eq!(store.events(filed.id).await.unwrap().len(), events + 1);
        assert_eq!(claim_all(&store, t0() + Duration::minutes(2)).await.len(), 2);
    }
}

story! {
    async fn a_processed_key_is_claimed_once(store: Arc<dyn Store>) {
        assert!(store.claim_key("Ev1", t0()).await.unwrap());
        assert!(!store.claim_key("Ev1", t0()).await.unwrap());
        assert!(store.claim_key("Ev2", t0()).await.unwrap());
    }
}

story! {
    async fn a_thread_reply_is_kept_once_and_relayed_to_every_other_card(store: Arc<dyn Store>) {
        store.put_app(&github(), t0()).await.unwrap();
        let app = App {
            approvers: vec!["UAPPROVER".into(), "UAPPROVER2".into(), "UAPPROVER3".into()],
            ..github()
        };
        store.put_app(&app, t0()).await.unwrap();
        let request = file(&store, new_request(&app, "UREQ", None)).await;
        let cards = store.cards(request.id).await.unwrap();
        assert_eq!(cards.len(), 4, "the receipt and three approval cards");
        let source = &cards[1];
        // Every card but the last is posted before the reply; the last one after it.
        let (late, early) = cards.split_last().unwrap();
        for (i, card) in early.iter().enumerate() {
            let channel = if card.id == source.id {
                "DAPPROVER".to_string()
            } else {
                format!("D{i}")
            };
            let ts = if card.id == source.id {
                "100.000001".to_string()
            } else {
                format!("100.00010{i}")
            };
            store
                .card_posted(card.id, &channel, &ts, request.version, t0())
                .await
                .unwrap();
        }
        let found = store
            .card_by_message("DAPPROVER", "100.000001")
            .await
            .unwrap();
        assert_eq!(found.map(|card| card.id), Some(source.id));
        assert!(store
            .card_by_message("DAPPROVER", "999.1")
            .await
            .unwrap()
            .is_none());
        drain(&store, t0()).await;

        let post = ThreadPost {
            request_id: request.id,
            source_card_id: source.id,
            source_channel: "DAPPROVER".into(),
            source_ts: "100.000002".into(),
            event: NewEvent {
                at: t0(),
                actor: "UAPPROVER".into(),
                kind: EventKind::ThreadMessage,
                before: None,
                after: None,
                detail: Some("why?".into()),
            },
            message: ThreadMessage {
                at: t0(),
                user: "UAPPROVER".into(),
                text: "why?".into(),
            },
        };
        assert!(store.add_thread_message(post.clone()).await.unwrap());
        assert!(!store.add_thread_message(post).await.unwrap(), "kept twice");

        let kept = store
            .thread_message_at("DAPPROVER", "100.000002")
            .await
            .unwrap()
            .expect("kept by its source");
        assert_eq!(
            (kept.user.as_str(), kept.text.as_str(), kept.version, kept.deleted),
            ("UAPPROVER", "why?", 1, false)
        );
        let relayed: Vec<i64> = drain(&store, t0())
            .await
            .into_iter()
            .map(|delivery| match delivery {
                Delivery::RelayMessage {
                    card_id,
                    message_id,
                } => {
                    assert_eq!(message_id, kept.id);
                    card_id
                }
                other => panic!("unexpected delivery {other:?}"),
            })
            .collect();
        let others: Vec<i64> = early
            .iter()
            .map(|c| c.id)
            .filter(|id| *id != source.id)
            .collect();
        assert_eq!(
            relayed, others,
            "relayed to the posted cards but the source"
        );
        // The card posted after the reply gets it as the conversation so far, not as a relay.
        store
            .card_posted(
                late.id,
                "DLATE",
                "200.000001",
                request.version,
                t0(),
            )
            .await
            .unwrap();
        assert_eq!(
            drain(&store, t0()).await,
            [Delivery::ThreadSummary {
                card_id: late.id,
                messages: 1
            }]
        );
        let thread = store.thread(request.id).await.unwrap();
        assert_eq!(thread.len(), 1);
        assert_eq!(thread[0].user, "UAPPROVER");
        let kinds: Vec<String> = store
            .events(request.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(kinds, ["created", "thread_message"]);
    }
}

story! {
    async fn edits_and_deletions_reach_every_copy_posted_before_or_after(store: Arc<dyn Store>) {
        let app = App {
            approvers: vec!["UAPPROVER".into(), "UAPPROVER2".into()],
            ..github()
        };
        store.put_app(&app, t0()).await.unwrap();
        let request = file(&store, new_request(&app, "UREQ", None)).await;
        let cards = store.cards(request.id).await.unwrap();
        assert_eq!(cards.len(), 3, "the receipt and two approval cards");
        for (i, card) in cards.iter().enumerate() {
            store
                .card_posted(card.id, &format!("D{i}"), "100.000001", request.version, t0())
                .await
                .unwrap();
        }
        drain(&store, t0()).await;
        let event = |kind| NewEvent {
            at: t0(),
            actor: "UREQ".into(),
            kind,
            before: None,
            after: None,
            detail: None,
        };
        let post = ThreadPost {
            request_id: request.id,
            source_card_id: cards[0].id,
            source_channel: "D0".into(),
            source_ts: "100.000002".into(),
            event: event(EventKind::ThreadMessage),
            message: ThreadMessage {
                at: t0(),
                user: "UREQ".into(),
                text: "first".into(),
            },
        };
        assert!(store.add_thread_message(post).await.unwrap());
        drain(&store, t0()).await;
        let message = store.thread_message_at("D0", "100.000002").await.unwrap().unwrap();
        let (early, late) = (cards[1].id, cards[2].id);
        // One copy is posted before the edit; the other was rendered before it and is
        // recorded after it.
        let copy = |ts: &str| RelayCopy {
            channel: "DCOPY".into(),
            ts: ts.into(),
        };
        store
            .relay_copy_posted(message.id, early, copy("200.1"), 1, t0())
            .await
            .unwrap();
        assert_eq!(drain(&store, t0()).await, [], "an up-to-date copy needs nothing");
        let edit = ThreadChange {
            message_id: message.id,
            request_id: request.id,
            text: Some("second".into()),
            event: event(EventKind::ThreadMessageEdited),
        };
        assert!(store.change_thread_message(edit).await.unwrap());
        assert_eq!(
            drain(&store, t0()).await,
            [Delivery::UpdateRelayCopy {
                card_id: early,
                message_id: message.id
            }]
        );
        store
            .relay_copy_posted(message.id, late, copy("200.2"), 1, t0())
            .await
            .unwrap();
        assert_eq!(
            drain(&store, t0()).await,
            [Delivery::UpdateRelayCopy {
                card_id: late,
                message_id: message.id
            }],
            "a copy rendered before the edit is updated"
        );
        assert_eq!(
            store.relay_copy(message.id, late).await.unwrap(),
            Some(copy("200.2"))
        );
        assert_eq!(store.thread(request.id).await.unwrap()[0].text, "second");

        let deletion = ThreadChange {
            message_id: message.id,
            request_id: request.id,
            text: None,
            event: event(EventKind::ThreadMessageDeleted),
        };
        assert!(store.change_thread_message(deletion.clone()).await.unwrap());
        assert!(!store.change_thread_message(deletion).await.unwrap(), "deleted once");
        assert_eq!(
            drain(&store, t0()).await,
            [
                Delivery::DeleteRelayCopy {
                    card_id: early,
                    message_id: message.id
                },
                Delivery::DeleteRelayCopy {
                    card_id: late,
                    message_id: message.id
                }
            ]
        );
        assert!(store.thread(request.id).await.unwrap().is_empty());
        let gone = store.thread_message(message.id).await.unwrap().unwrap();
        assert!(gone.deleted && gone.text.is_empty(), "{gone:?}");
        let kinds: Vec<String> = store
            .events(request.id)
            .await
            .unwrap()
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds,
            [
                "created",
                "thread_message",
                "thread_message_edited",
                "thread_message_deleted"
            ]
        );
    }
}

story! {
    async fn open_tasks_are_the_requests_waiting_for_the_user_now(store: Arc<dyn Store>) {
        store.put_app(&github(), t0()).await.unwrap();
        store.put_app(&figma(), t0()).await.unwrap();
        let approval = file(&store, new_request(&github(), "UREQ", None)).await;
        let provisioning = file(&store, new_request(&figma(), "UREQ", None)).await;
        let ids = |requests: Vec<AccessRequest>| requests.into_iter().map(|r| r.id).collect::<Vec<_>>();
        assert_eq!(
            ids(store.open_tasks("UAPPROVER", 10).await.unwrap()),
            [approval.id]
        );
        assert_eq!(
            ids(store.open_tasks("UADMIN1", 10).await.unwrap()),
            [provisioning.id]
        );
        // A prefix of an assignee's id is not that assignee.
        assert!(store.open_tasks("UADMIN", 10).await.unwrap().is_empty());
        store
            .apply(change(&approval, "UAPPROVER", Command::Approve, t0()))
            .await
            .unwrap();
        assert!(store.open_tasks("UAPPROVER", 10).await.unwrap().is_empty());
        assert_eq!(
            ids(store.open_tasks("UADMIN1", 10).await.unwrap()),
            [approval.id, provisioning.id]
        );
    }
}

story! {
    async fn homes_are_republished_only_for_users_who_opened_them(store: Arc<dyn Store>) {
        store.put_app(&github(), t0()).await.unwrap();
        store.home_opened("UADMIN1", t0()).await.unwrap();
        store.home_opened("UADMIN1", t0()).await.unwrap();
        let mut new = new_request(&github(), "UREQ", None);
        new.deliveries.clear();
        new.new_cards.clear();
        new.republish_homes = vec!["UREQ".into(), "UADMIN1".into(), "UADMIN2".into()];
        let request = file(&store, new).await;
        let mut next = change(&request, "UAPPROVER", Command::Approve, t0());
        next.deliveries.clear();
        next.new_cards.clear();
        next.republish_homes = vec!["UADMIN1".into()];
        store.apply(next).await.unwrap();
        // The second republish joins the one already waiting.
        assert_eq!(
            drain(&store, t0()).await,
            [Delivery::PublishHome {
                user: "UADMIN1".into()
            }]
        );
    }
}

story! {
    async fn expiries_and_reminders_are_found_when_due(store: Arc<dyn Store>) {
        store.put_app(&figma(), t0()).await.unwrap();
        let request = file(&store, new_request(&figma(), "UREQ", None)).await;
        let waiting = store.waiting_since(t0(), 10).await.unwrap();
        assert_eq!(waiting.len(), 1);
        assert!(store
            .waiting_since(t0() - Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty());
        store
            .apply(change(
                &request,
                "UADMIN1",
                Command::ConfirmProvisioning,
                t0(),
            ))
            .await
            .unwrap();
        let expires = t0() + Duration::days(7);
        assert!(store
            .due_expiries(expires - Duration::seconds(1), 10)
            .await
            .unwrap()
            .is_empty());
        assert_eq!(store.due_expiries(expires, 10).await.unwrap().len(), 1);
        assert!(store.expiring_before(t0(), 10).await.unwrap().is_empty());
        let soon = store.expiring_before(expires, 10).await.unwrap();
        assert_eq!(soon.len(), 1);
        let an_hour_before = expires - Duration::hours(1);
        let reminded =
            domain::decide(&soon[0], &Actor::System, &Command::RemindExpiry, an_hour_before)
                .unwrap();
        store
            .apply(Change {
                request: reminded.request,
                event: reminded.event,
                new_cards: vec![],
                deliveries: vec![],
                republish_homes: vec![],
                dedup_key: None,
            })
            .await
            .unwrap();
        assert!(store.expiring_before(expires, 10).await.unwrap().is_empty());
    }
}

/// PostgreSQL decides on a connection of its own; when the server drops it (a restart, an
/// administrator, a network cut), the next decision opens another instead of failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn decisions_go_on_after_the_server_drops_their_connection() {
    let Some(db) = TestDb::new(Backend::Postgres).await else {
        return;
    };
    let store = db.store().await;
    let first = file(&store, new_request(&figma(), "UREQ", None)).await;
    let second = file(&store, new_request(&figma(), "UREQ", None)).await;
    drain(&store, t0()).await;
    let confirm: Decide = Arc::new(|request: AccessRequest| {
        try_change(&request, "UADMIN1", &Command::ConfirmProvisioning, t0())
    });
    let outcome = store.decide(first.id, None, confirm.clone()).await;
    assert!(matches!(outcome, Ok(Decided::Applied(_))), "{outcome:?}");

    let mut admin = <sqlx::PgConnection as sqlx::Connection>::connect(db.url())
        .await
        .unwrap();
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND application_name = 'accessbot-decisions'",
    )
    .fetch_all(&mut admin)
    .await
    .unwrap();
    assert_eq!(dropped, [true]);

    let outcome = store.decide(second.id, None, confirm).await;
    assert!(matches!(outcome, Ok(Decided::Applied(_))), "{outcome:?}");
    let stored = store.request(second.id).await.unwrap().unwrap();
    assert_eq!(stored.status, Status::Provisioned);
}

story! {
    async fn who_claimed_a_request_is_stored_and_read_back(store: Arc<dyn Store>) {
        let mut new = new_request(&github(), "UREQ", None);
        new.request.claimed_by = Some("UAPPROVER".into());
        let filed = file(&store, new).await;
        let stored = store.request(filed.id).await.unwrap().unwrap();
        assert_eq!(stored.claimed_by.as_deref(), Some("UAPPROVER"));
        assert_eq!(stored, filed);

        // A change writes it, through `apply` and through `decide`.
        let mut approve = change(&stored, "UAPPROVER", Command::Approve, t0());
        approve.request.claimed_by = Some("UADMIN1".into());
        store.apply(approve).await.unwrap();
        let stored = store.request(filed.id).await.unwrap().unwrap();
        assert_eq!(stored.claimed_by.as_deref(), Some("UADMIN1"));

        let release: Decide = Arc::new(|request: AccessRequest| {
            let mut change = try_change(&request, "UADMIN1", &Command::ConfirmProvisioning, t0())?;
            change.request.claimed_by = None;
            Ok(change)
        });
        let Decided::Applied(decided) = store.decide(filed.id, None, release).await.unwrap() else {
            panic!("the confirmation was not applied");
        };
        assert_eq!(decided.claimed_by, None);
        let stored = store.request(filed.id).await.unwrap().unwrap();
        assert_eq!(stored, *decided);
        let listed = store.requests(&RequestFilter::default()).await.unwrap();
        assert_eq!(listed, [stored]);
    }
}

story! {
    async fn a_closed_request_keeps_its_operator_and_reason_and_leaves_the_sweeps(store: Arc<dyn Store>) {
        let filed = file(&store, new_request(&figma(), "UREQ", None)).await;
        store
            .apply(change(&filed, "UADMIN1", Command::ConfirmProvisioning, t0()))
            .await
            .unwrap();
        drain(&store, t0()).await;
        let operator = "it-ops <ops@example.com> & co";
        let reason = "The admins left.\nTracked in IT-4411 — «ü»";
        let close = Command::close(operator, reason).unwrap();
        let later = t0() + Duration::hours(1);
        let decide: Decide = Arc::new(move |request: AccessRequest| {
            let decision = domain::decide(&request, &Actor::Api, &close, later)?;
            let deliveries = decision
                .effects
                .into_iter()
                .filter_map(|effect| match effect {
                    domain::Effect::Notify { to, notice } => Some(Delivery::Notify {
                        request_id: request.id,
                        to,
                        notice,
                    }),
                    _ => None,
                })
                .collect();
            Ok(Change {
                request: decision.request,
                event: decision.event,
                new_cards: vec![],
                deliveries,
                republish_homes: vec![],
                dedup_key: None,
            })
        });
        let Decided::Applied(closed) = store.decide(filed.id, None, decide).await.unwrap() else {
            panic!("the close was not applied");
        };
        assert_eq!(closed.status, Status::Expired);
        let stored = store.request(filed.id).await.unwrap().unwrap();
        assert_eq!(stored, *closed);
        assert_eq!(stored.closed_by.as_deref(), Some(operator));
        assert_eq!(stored.close_reason.as_deref(), Some(reason));
        assert_eq!(stored.removed_by, None, "nobody confirmed a removal");
        let listed = store.requests(&RequestFilter::default()).await.unwrap();
        assert_eq!(listed, [stored]);

        let event = store.events(filed.id).await.unwrap().pop().unwrap();
        assert_eq!(event.kind, EventKind::Closed.as_str());
        assert_eq!(event.actor, operator);
        assert_eq!(event.detail.as_deref(), Some(reason));

        // The requester's notice comes back out of the outbox as it went in.
        assert_eq!(
            drain(&store, later).await,
            [Delivery::Notify {
                request_id: filed.id,
                to: "UREQ".into(),
                notice: domain::Notice::Closed {
                    by: operator.into(),
                    reason: reason.into(),
                    removal_unconfirmed: true,
                },
            }]
        );
        // Its end date passes: neither the expiry sweep nor the reminders find it.
        let after_the_end = t0() + Duration::days(8);
        assert!(store.due_expiries(after_the_end, 10).await.unwrap().is_empty());
        assert!(store.expiring_before(after_the_end, 10).await.unwrap().is_empty());
        assert!(store.waiting_since(after_the_end, 10).await.unwrap().is_empty());
    }
}
