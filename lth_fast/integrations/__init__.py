"""Lottery tickets inside other training frameworks, each an optional extra that
`import lth_fast` never needs: lth_fast.integrations.lightning (pip install
'lth_fast[lightning]') and lth_fast.integrations.hf (pip install 'lth_fast[hf]'). What they
share, the IMP levels inside a training run, is lth_fast.integrations.levels."""
