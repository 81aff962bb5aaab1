//! Two or three nodes on 127.0.0.1: dialing, identify, private networks and allow-lists.

use std::collections::HashSet;
use std::time::Duration;

use cairn_net::{NetConfig, NetHandle, keypair_from_seed};

async fn node(seed: u8, config: NetConfig) -> (NetHandle, tokio::sync::watch::Sender<bool>) {
    let (stop, rx) = tokio::sync::watch::channel(false);
    let config = NetConfig {
        listen: vec!["/ip4/127.0.0.1/tcp/0".parse().unwrap()],
        ..config
    };
    let (handle, _task) = cairn_net::start(keypair_from_seed([seed; 32]).unwrap(), config, rx)
        .await
        .unwrap();
    (handle, stop)
}

async fn wait_for_agent(on: &NetHandle, peer: libp2p::PeerId) -> String {
    for _ in 0..100 {
        if let Some(p) = on
            .peers()
            .await
            .unwrap()
            .into_iter()
            .find(|p| p.peer_id == peer)
            && let Some(agent) = p.agent
        {
            return agent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{peer} never identified");
}

use cairn_net::libp2p;

#[tokio::test]
async fn nodes_dial_and_identify_each_other() {
    let (a, _sa) = node(1, NetConfig::default()).await;
    let (b, _sb) = node(2, NetConfig::default()).await;
    let addr = a.addrs().await.unwrap().remove(0);
    assert!(addr.to_string().ends_with(&format!("/p2p/{}", a.peer_id())));
    assert_eq!(b.dial(addr.clone()).await.unwrap(), a.peer_id());
    // dialing again is a no-op
    assert_eq!(b.dial(addr).await.unwrap(), a.peer_id());
    assert!(wait_for_agent(&a, b.peer_id()).await.starts_with("cairn/"));
    assert!(wait_for_agent(&b, a.peer_id()).await.starts_with("cairn/"));
    // the same seed gives the same peer id
    assert_eq!(
        keypair_from_seed([1; 32]).unwrap().public().to_peer_id(),
        a.peer_id()
    );
}

#[tokio::test]
async fn a_wrong_pre_shared_key_gets_no_connection() {
    let psk = |k| NetConfig {
        psk: Some([k; 32]),
        ..NetConfig::default()
    };
    let (a, _sa) = node(1, psk(7)).await;
    let (b, _sb) = node(2, psk(7)).await;
    let (c, _sc) = node(3, psk(8)).await;
    let addr = a.addrs().await.unwrap().remove(0);
    assert_eq!(b.dial(addr.clone()).await.unwrap(), a.peer_id());
    assert!(c.dial(addr).await.is_err());
    assert!(c.peers().await.unwrap().is_empty());
    // QUIC cannot carry a private network
    let (stop, rx) = tokio::sync::watch::channel(false);
    let quic = NetConfig {
        listen: vec!["/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap()],
        ..psk(7)
    };
    assert!(
        cairn_net::start(keypair_from_seed([4; 32]).unwrap(), quic, rx)
            .await
            .is_err()
    );
    drop(stop);
}

#[tokio::test]
async fn peers_outside_the_allow_list_are_refused() {
    let b_id = keypair_from_seed([2; 32]).unwrap().public().to_peer_id();
    let (a, _sa) = node(
        1,
        NetConfig {
            allow: Some(HashSet::from([b_id])),
            ..NetConfig::default()
        },
    )
    .await;
    let (b, _sb) = node(2, NetConfig::default()).await;
    let (c, _sc) = node(3, NetConfig::default()).await;
    let addr = a.addrs().await.unwrap().remove(0);
    assert_eq!(b.dial(addr.clone()).await.unwrap(), a.peer_id());
    let _ = c.dial(addr).await; // the handshake may complete before A drops it
    tokio::time::sleep(Duration::from_millis(500)).await;
    let on_a: Vec<_> = a
        .peers()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.peer_id)
        .collect();
    assert!(on_a.contains(&b.peer_id()));
    assert!(!on_a.contains(&c.peer_id()), "{on_a:?}");
}
