//! PIB store records as read back from disk (a corrupt or hostile store file): every decoder
//! returns a value or a typed error, and what decodes round-trips.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| mpx::pib::fuzzing::decode_records(data));
