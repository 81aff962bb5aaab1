//! Untrusted bucket heads: a `/cairn/heads/1.0.0` answer as `Replication::hold_shared` reads it (the
//! list of shared buckets, each head's signature verified), a head record pushed to a replica
//! set as `Replication::hold_heads` reads it (under a fuzzed key), and one signed head.
#![no_main]

use cairn_fuzz::Input;
use cairn_node::replication::follow::received;
use cairn_node::model::records::head_key;
use cairn_node::model::heads::SignedHead;
use libfuzzer_sys::fuzz_target;

fuzz_target!(
    init: cairn_fuzz::write_seeds_if_asked("heads"),
    |data: &[u8]| {
        let _ = received::shared_heads(data);
        let _ = SignedHead::verify(data, None);
        let mut input = Input::new(data);
        let key = String::from_utf8_lossy(input.short()).into_owned();
        let record = input.rest();
        if let Ok(head) = received::head_record(&key, record) {
            assert_eq!(key, head_key(&head.payload.bucket));
        }
    }
);
