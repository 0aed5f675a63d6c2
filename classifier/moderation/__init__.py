"""The moderation wing: the policy (:mod:`.policy`), the HTTP hook (:mod:`.app`), its client
(:mod:`.client`)."""
