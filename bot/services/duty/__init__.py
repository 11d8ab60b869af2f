"""The street centre's duty rota (值班): the rota (:mod:`.rota`), a sheet of it
(:mod:`.sheet`), swaps between operators (:mod:`.swaps`), paging the operator on duty first
(:mod:`.paging`) and warning of gaps a day ahead (:mod:`.gaps`)."""
