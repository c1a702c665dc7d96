//! Admin accounts: created, found ignoring case, updated, listed; names unique ignoring case.

use super::*;
use crate::account::{Account, AccountId, Role};
use crate::store::Error;

fn account(name: &str, role: Role) -> Account {
    Account {
        id: AccountId::new(),
        username: name.into(),
        role,
        password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ${name}"),
        disabled: false,
        token_version: 0,
        created_at: t0(),
        updated_at: t0(),
    }
}

/// An account reads back as written (found by its name in any ASCII case); a second account
/// whose name differs only in case, or that reuses an id, is [`Error::Conflict`]; an update
/// replaces role, disabled flag, hash and token version (and may rename, but not onto
/// another's name); updating an unknown id is [`Error::AccountNotFound`]; the list is by name.
/// A store without accounts answers [`Error::Unsupported`].
pub async fn accounts_crud_unique_names(store: Arc<dyn Store>) {
    let s = &*store;
    let alice = account("alice", Role::Admin);
    match s.create_account(&alice).await {
        Err(Error::Unsupported(what)) => {
            eprintln!("conformance: this store does not keep {what}; account checks skipped");
            return;
        }
        other => other.unwrap(),
    }
    assert_eq!(s.find_account("alice").await.unwrap(), Some(alice.clone()));
    assert_eq!(
        s.find_account("ALICE").await.unwrap(),
        Some(alice.clone()),
        "found ignoring ASCII case"
    );
    assert_eq!(s.find_account("bob").await.unwrap(), None);
    assert!(
        matches!(
            s.create_account(&account("Alice", Role::Viewer)).await,
            Err(Error::Conflict(_))
        ),
        "names are unique ignoring case"
    );
    let mut same_id = account("carol", Role::Viewer);
    same_id.id = alice.id;
    assert!(
        matches!(s.create_account(&same_id).await, Err(Error::Conflict(_))),
        "an id once"
    );
    let mut bad = account("has space", Role::Viewer);
    assert!(matches!(
        s.create_account(&bad).await,
        Err(Error::Validation(_))
    ));
    bad.username = "bob".into();
    let bob = bad;
    s.create_account(&bob).await.unwrap();

    let mut changed = alice.clone();
    changed.role = Role::Viewer;
    changed.disabled = true;
    changed.token_version = 3;
    changed.password_hash = "$argon2id$v=19$m=19456,t=2,p=1$bmV3c2FsdA$bmV3".into();
    changed.updated_at = t0() + chrono::Duration::seconds(5);
    s.update_account(&changed).await.unwrap();
    assert_eq!(
        s.find_account("alice").await.unwrap(),
        Some(changed.clone())
    );

    let mut onto_bob = changed.clone();
    onto_bob.username = "BOB".into();
    assert!(
        matches!(s.update_account(&onto_bob).await, Err(Error::Conflict(_))),
        "a rename onto another's name"
    );
    assert_eq!(
        s.find_account("alice").await.unwrap(),
        Some(changed.clone())
    );
    let ghost = account("ghost", Role::Admin);
    assert!(matches!(
        s.update_account(&ghost).await,
        Err(Error::AccountNotFound(id)) if id == ghost.id
    ));
    assert_eq!(s.find_account("ghost").await.unwrap(), None);

    let mut renamed = changed.clone();
    renamed.username = "Alice".into();
    s.update_account(&renamed).await.unwrap();
    assert_eq!(
        s.find_account("alice").await.unwrap(),
        Some(renamed.clone())
    );

    let all = s.list_accounts().await.unwrap();
    assert_eq!(all, vec![renamed, bob], "by name");
}
