//! End-to-end tests against a real pulsar-lite broker and the official Python client.
