"""Portal forms of fx: input only. Amounts are parsed by config.money (exact, with its refusal codes)."""

from __future__ import annotations

from django import forms

from config import money

SIDE_CHOICES = [("sell", "I pay exactly"), ("buy", "I receive exactly")]


class QuoteForm(forms.Form):
    sell_currency = forms.ChoiceField(label="Pay in", choices=money.CURRENCY_CHOICES)
    buy_currency = forms.ChoiceField(label="Receive in", choices=money.CURRENCY_CHOICES, initial="HKD")
    fixed_side = forms.ChoiceField(label="Amount fixed", choices=SIDE_CHOICES, initial="sell")
    amount = forms.CharField(label="Amount", max_length=32, widget=forms.TextInput(attrs={"inputmode": "decimal"}))

    def clean(self):
        cleaned = super().clean()
        sell, buy, side, amount = (cleaned.get(k) for k in ("sell_currency", "buy_currency", "fixed_side", "amount"))
        if sell and buy and sell == buy:
            raise forms.ValidationError("Choose two different currencies.", code="fx_pair_invalid")
        if sell and buy and side and amount is not None:
            currency = sell if side == "sell" else buy
            try:
                cleaned["amount"] = money.parse_amount(amount.strip().replace(",", ""), currency)
            except money.MoneyParseError as exc:
                self.add_error("amount", forms.ValidationError(exc.message, code=exc.code))
        return cleaned

    def service_kwargs(self) -> dict:
        data = self.cleaned_data
        return {
            "sell_currency": data["sell_currency"],
            "buy_currency": data["buy_currency"],
            f"{data['fixed_side']}_amount": data["amount"],
        }


class SwapFilterForm(forms.Form):
    currency = forms.ChoiceField(label="Currency", choices=[("", "Any"), *money.CURRENCY_CHOICES], required=False)
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))
