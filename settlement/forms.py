"""Portal forms of settlement: input shapes only; the rules are the services'."""

from __future__ import annotations

from django import forms

from config import money
from corporates.models import BankAccount, BankAccountStatus, Enterprise


class RedemptionForm(forms.Form):
    amount = forms.CharField(max_length=32, help_text="Paid out at par: your bank account receives exactly this.")
    bank_account = forms.ModelChoiceField(
        queryset=BankAccount.objects.none(),
        empty_label=None,
        help_text="A verified account; the redemption is in its currency.",
    )

    def __init__(self, *args, enterprise: Enterprise, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["bank_account"].queryset = BankAccount.objects.filter(
            enterprise=enterprise, status=BankAccountStatus.VERIFIED
        ).order_by("currency", "id")
        self.fields["bank_account"].label_from_instance = lambda account: (
            f"{account.currency} · {account.bank_name} {account.masked_number} ({account.holder_name})"
        )

    def clean(self) -> dict:
        cleaned = super().clean()
        account: BankAccount | None = cleaned.get("bank_account")
        if account is not None and "amount" in cleaned:
            try:
                cleaned["amount"] = money.parse_amount(cleaned["amount"], account.currency)
            except money.MoneyParseError as exc:
                self.add_error("amount", exc.message)
        return cleaned
