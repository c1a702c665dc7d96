//! The shared `BudgetStore` conformance suite, against a fresh file and against `:memory:`.

use budget_store_sqlite::SqliteStore;

/// A store on a fresh file under Cargo's per-target scratch folder (`target/tmp`). The folder
/// is kept (not deleted on drop) because the suite owns the store and outlives this function.
async fn temp_file_store() -> SqliteStore {
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR"))
        .unwrap()
        .keep();
    SqliteStore::open(&format!("sqlite:{}", dir.join("usage.db").display()))
        .await
        .unwrap()
}

mod file {
    budget_core::store_conformance_tests!(async { crate::temp_file_store().await });
}

mod memory {
    budget_core::store_conformance_tests!(async {
        budget_store_sqlite::SqliteStore::open("sqlite::memory:")
            .await
            .unwrap()
    });
}
