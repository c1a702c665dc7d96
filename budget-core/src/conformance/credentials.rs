//! Upstream credentials, and codes kept through a rotation's grace period.

use super::*;
use crate::credential::{Credential, CredentialId, CredentialKind, SealedSecret};
use crate::store::Error;

fn credential(name: &str, secret: &[u8]) -> Credential {
    // To the microsecond, as stores keep times.
    let now = Utc::now();
    let now = DateTime::from_timestamp_micros(now.timestamp_micros()).unwrap_or(now);
    Credential {
        id: CredentialId::new(),
        name: name.into(),
        kind: CredentialKind::Openai,
        organization: Some("org-conformance".into()),
        project: None,
        sealed: SealedSecret(secret.to_vec()),
        hint: "…wxyz".into(),
        fingerprint: "sha256:0123456789ab".into(),
        created_at: now,
        updated_at: now,
        rotated_at: now,
    }
}

/// A rotation with a grace period keeps the old code working until its end, and a rotation
/// without one retires every older code at once.
pub async fn rotation_grace_keeps_the_old_code(store: Arc<dyn Store>) {
    let s = &*store;
    let a = limiter(s, "1", Period::Day, EnforcementMode::Soft).await;
    let until = Utc::now() + chrono::Duration::milliseconds(700);
    let b = s.rotate_code(a.id, Some(until)).await.unwrap();
    assert_ne!(b.code, a.code);
    let prev = b.previous_code.clone().expect("the old code is kept");
    assert_eq!(prev.code, a.code);
    assert!(
        (prev.until - until).num_milliseconds().abs() <= 1,
        "to the microsecond"
    );
    assert_eq!(
        by_code(s, a.code.as_str()).await.map(|l| l.id),
        Some(a.id),
        "old code, in its grace period"
    );
    assert_eq!(by_code(s, b.code.as_str()).await.map(|l| l.id), Some(a.id));
    let read = s.get_limiter(a.id).await.unwrap().unwrap();
    assert_eq!(
        read.previous_code, b.previous_code,
        "the grace period is stored"
    );
    tokio::time::sleep(std::time::Duration::from_millis(900)).await;
    assert!(
        by_code(s, a.code.as_str()).await.is_none(),
        "the grace period is over"
    );
    assert_eq!(by_code(s, b.code.as_str()).await.map(|l| l.id), Some(a.id));

    // With a grace period again, then without: both older codes stop at once.
    let c = s
        .rotate_code(a.id, Some(Utc::now() + chrono::Duration::hours(1)))
        .await
        .unwrap();
    assert_eq!(by_code(s, b.code.as_str()).await.map(|l| l.id), Some(a.id));
    let d = s.rotate_code(a.id, None).await.unwrap();
    assert!(d.previous_code.is_none());
    assert!(by_code(s, b.code.as_str()).await.is_none());
    assert!(by_code(s, c.code.as_str()).await.is_none());
    assert_eq!(by_code(s, d.code.as_str()).await.map(|l| l.id), Some(a.id));
    // A grace period that already ended keeps nothing.
    let e = s
        .rotate_code(a.id, Some(Utc::now() - chrono::Duration::seconds(1)))
        .await
        .unwrap();
    assert!(e.previous_code.is_none());
    assert!(by_code(s, d.code.as_str()).await.is_none());
    assert!(matches!(
        s.rotate_code(LimiterId::new(), None).await,
        Err(Error::LimiterNotFound(_))
    ));
}

/// Credentials: create, list, find on the hot path, replace (a rotated secret is what the
/// next request gets), unique names, limiters that name one, and no deleting one in use. A
/// store without credentials answers [`Error::Unsupported`] and the check ends there.
pub async fn credentials_crud_and_hot_path(store: Arc<dyn Store>) {
    let s = &*store;
    let c = credential("openai-prod", b"sealed-1");
    match s.create_credential(&c).await {
        Err(Error::Unsupported(what)) => {
            eprintln!("conformance: this store does not keep {what}; credential checks skipped");
            return;
        }
        other => other.unwrap(),
    }
    assert_eq!(s.list_credentials().await.unwrap(), vec![c.clone()]);
    assert_eq!(s.find_credential(c.id).await.unwrap().as_deref(), Some(&c));
    assert!(s
        .find_credential(CredentialId::new())
        .await
        .unwrap()
        .is_none());

    // Unique id and name; invalid input is refused.
    assert!(matches!(
        s.create_credential(&c).await,
        Err(Error::Conflict(_))
    ));
    let mut same_name = credential("openai-prod", b"x");
    assert!(matches!(
        s.create_credential(&same_name).await,
        Err(Error::Conflict(_))
    ));
    same_name.name = " ".into();
    assert!(matches!(
        s.create_credential(&same_name).await,
        Err(Error::Validation(_))
    ));
    let mut azure = credential("azure-east", b"sealed-az");
    azure.kind = CredentialKind::Azure;
    azure.organization = None;
    s.create_credential(&azure).await.unwrap();
    let names: Vec<String> = s
        .list_credentials()
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.name)
        .collect();
    assert_eq!(names, ["azure-east", "openai-prod"], "by name");

    // A rotated secret and a new name: the hot path answers the new one at once.
    let mut rotated = c.clone();
    rotated.sealed = SealedSecret(b"sealed-2".to_vec());
    rotated.name = "openai-main".into();
    rotated.hint = "…abcd".into();
    s.update_credential(&rotated).await.unwrap();
    assert_eq!(
        s.find_credential(c.id).await.unwrap().as_deref(),
        Some(&rotated)
    );
    let mut taken = rotated.clone();
    taken.name = "azure-east".into();
    assert!(matches!(
        s.update_credential(&taken).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        s.update_credential(&credential("ghost", b"g")).await,
        Err(Error::CredentialNotFound(_))
    ));

    // Limiters name it; it cannot be deleted while a live one does.
    let mut n = NewLimiter::new(
        "keyed",
        Money::from_dollars(1),
        Period::Day,
        "https://api.openai.com",
    );
    n.credential_id = Some(c.id);
    let l = Limiter::create(n, Utc::now()).unwrap();
    s.create_limiter(&l).await.unwrap();
    assert_eq!(
        s.get_limiter(l.id).await.unwrap().unwrap().credential_id,
        Some(c.id)
    );
    assert_eq!(
        by_code(s, l.code.as_str()).await.unwrap().credential_id,
        Some(c.id)
    );
    let err = s.delete_credential(c.id).await.unwrap_err();
    assert!(
        matches!(&err, Error::Conflict(m) if m.contains("keyed")),
        "{err}"
    );
    let other = limiter(s, "1", Period::Day, EnforcementMode::Soft).await;
    let attached = s
        .update_limiter(
            other.id,
            &LimiterUpdate {
                credential_id: Some(Some(azure.id)),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(attached.credential_id, Some(azure.id));
    let detached = s
        .update_limiter(
            l.id,
            &LimiterUpdate {
                credential_id: Some(None),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(detached.credential_id, None);
    assert_eq!(
        by_code(s, l.code.as_str()).await.unwrap().credential_id,
        None
    );
    s.delete_credential(c.id).await.unwrap();
    assert!(s.find_credential(c.id).await.unwrap().is_none());
    assert!(matches!(
        s.delete_credential(c.id).await,
        Err(Error::CredentialNotFound(_))
    ));
    // A deleted limiter does not keep its credential from being deleted.
    s.delete_limiter(other.id, false).await.unwrap();
    s.delete_credential(azure.id).await.unwrap();
    assert!(s.list_credentials().await.unwrap().is_empty());
}
