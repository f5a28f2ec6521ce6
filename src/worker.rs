//! Background delivery.
