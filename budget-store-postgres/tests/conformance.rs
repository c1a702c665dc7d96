//! The budget-core conformance suite against a real PostgreSQL (a throwaway cluster, or
//! `BUDGET_TEST_DATABASE_URL`); skipped, saying so, when PostgreSQL is not installed.

use budget_store_postgres::testing::TestCluster;
use budget_store_postgres::PostgresStore;

async fn store() -> Option<PostgresStore> {
    let cluster = TestCluster::shared("postgres conformance")?;
    Some(
        PostgresStore::open(&cluster.fresh_database().await)
            .await
            .unwrap(),
    )
}

budget_core::store_conformance_tests!(optional async { store().await });
