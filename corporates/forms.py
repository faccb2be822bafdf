"""Portal forms: input shape only. The rules live in the services they feed."""

from __future__ import annotations

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from config import money
from corporates.models import ApiScope, MemberRole


class SignInForm(AuthenticationForm):
    username = forms.CharField(
        label="Email", max_length=254, widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "username"})
    )


class TotpForm(forms.Form):
    token = forms.RegexField(
        label="Six-digit code",
        regex=r"^\s*\d{6}\s*$",
        error_messages={"invalid": "Enter the six digits your authenticator app shows."},
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True, "size": 8}
        ),
    )


class InviteForm(forms.Form):
    email = forms.EmailField(label="Email")
    # A choice field: an unknown role comes back as a form error before the
    # service (which checks again for every other caller) is reached.
    role = forms.ChoiceField(label="Role", choices=MemberRole.choices, initial=MemberRole.VIEWER)


class RoleChangeForm(forms.Form):
    role = forms.ChoiceField(label="Role", choices=MemberRole.choices)


class InvitationAcceptForm(forms.Form):
    password1 = forms.CharField(
        label="Password", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )
    password2 = forms.CharField(
        label="Password again", strip=False, widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("password1") and cleaned.get("password1") != cleaned.get("password2"):
            self.add_error("password2", "The two passwords differ.")
        return cleaned


class StatementFilterForm(forms.Form):
    date_from = forms.DateField(label="From", required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label="To", required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        cleaned = super().clean()
        start, end = cleaned.get("date_from"), cleaned.get("date_to")
        if start and end and start > end:
            self.add_error("date_to", "The end date is before the start date.")
        return cleaned


# --- API keys, webhooks, bank accounts ------------------------------------------


class ApiKeyForm(forms.Form):
    name = forms.CharField(label="Name", max_length=100, help_text="What the key is for, e.g. “SAP production”.")
    scopes = forms.MultipleChoiceField(
        label="Scopes",
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=["read"],
    )


class WebhookEndpointForm(forms.Form):
    url = forms.URLField(label="Endpoint URL", max_length=500, assume_scheme="https")
    event_types = forms.CharField(
        label="Event types",
        initial="*",
        help_text="Separated by spaces or commas: exact (fx.quote.accepted), a prefix (fx.*) or * for all.",
    )
    description = forms.CharField(label="Description", max_length=200, required=False)

    def clean_event_types(self) -> list[str]:
        return [item for item in self.cleaned_data["event_types"].replace(",", " ").split() if item]


class BankAccountForm(forms.Form):
    holder_name = forms.CharField(label="Account holder", max_length=200)
    bank_name = forms.CharField(label="Bank", max_length=200)
    account_number = forms.CharField(label="Account number or IBAN", max_length=60)
    currency = forms.ChoiceField(label="Currency", choices=money.CURRENCY_CHOICES)
