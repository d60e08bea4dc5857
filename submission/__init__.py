"""Package runs into the official MLPerf open-division submission tree and pre-check it."""
