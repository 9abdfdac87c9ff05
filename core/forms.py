from django import forms

from .accounts import USERNAME_MAX


class SignupForm(forms.Form):
    username = forms.CharField(max_length=USERNAME_MAX)
    email = forms.EmailField(required=False)
    password = forms.CharField(widget=forms.PasswordInput, max_length=512)
