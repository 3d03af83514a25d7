"""Task notifications: delivery attempts, the channels, outbound HTTP and mail."""
