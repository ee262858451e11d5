//! Fuzz target: any bytes through the mDNS parser; whatever parses must survive an encode and
//! parse back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use microcloud::discovery::codec;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = codec::parse(data) {
        if let Ok(bytes) = codec::encode(&msg) {
            let again = codec::parse(&bytes).expect("our own encoding must parse");
            assert_eq!(again, msg);
        }
    }
});
