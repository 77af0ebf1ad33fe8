"""Webhook adapters: the secret cipher, the signer, the SSRF guard and the HTTP sender."""
