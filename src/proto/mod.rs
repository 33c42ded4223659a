//! Sans-IO RADIUS wire codec.
