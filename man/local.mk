dist_man_MANS += man/kvfsd.8 man/kvfs.1 man/kvfs-api.7

# mandoc -Tlint must report nothing for every page.
check-man:
	@for m in $(dist_man_MANS); do mandoc -Tlint -W warning $(srcdir)/$$m || exit 1; done
.PHONY: check-man
