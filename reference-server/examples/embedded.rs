//! Embeds the reference server in a program (as an integration test would),
//! connects to it, and prints the welcome.
//!
//! `cargo run -p tidewire-server --example embedded`

use std::time::Duration;

use futures_util::StreamExt;
use tidewire_server::{AuthMode, Config, Server};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Config {
        auth_mode: AuthMode::Off,
        heartbeat_interval: Duration::from_secs(5),
        ..Config::default()
    }
    .before_operation(|ctx| {
        println!("{} sent {}", ctx.connection_id, ctx.request.tag());
        Ok(())
    });
    let server = Server::start(config).await?;
    println!("listening on {}", server.ws_url());

    let (mut ws, _) = tokio_tungstenite::connect_async(server.ws_url()).await?;
    if let Some(message) = ws.next().await {
        println!("{}", message?.into_text()?);
    }
    drop(ws);
    server.shutdown().await;
    Ok(())
}
