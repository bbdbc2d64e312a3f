//! Idle memory: the server's resident memory growth per open, idle connection.

use std::time::Duration;

use crate::client::{self, Error};
use crate::target::{Kind, Target};

/// Time for the server to settle after the last connection is open.
const SETTLE: Duration = Duration::from_secs(2);

/// Bytes of server RSS per connection with `connections` idle connections open.
pub async fn per_connection(target: &Target, connections: usize) -> Result<f64, Error> {
    let before = target.rss();
    let conns =
        client::connect_many(&target.url, connections, target.kind == Kind::Tidewire).await?;
    tokio::time::sleep(SETTLE).await;
    let after = target.rss();
    drop(conns);
    tokio::time::sleep(SETTLE).await;
    Ok(after.saturating_sub(before) as f64 / connections as f64)
}
